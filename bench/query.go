package main

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib"
	"go.jetify.com/typeid"
	_ "modernc.org/sqlite"
)

// benchQuery stores queryRows punches and measures filtered /v1/attendance
// pages: the latency an integrator sees when paging one device's day, one
// employee's month, or a site-wide day.
func benchQuery(bin, dir string) []result {
	const devices, employees = 50, 5000
	s := startServer(bin, dir)
	serials := s.setup(devices, employees)
	var devList struct {
		Data []struct {
			ID string `json:"id"`
		} `json:"data"`
	}
	check(json.Unmarshal(s.api("GET", "/v1/devices?per_page=500", nil), &devList))
	var empList struct {
		Data []struct {
			ID          string `json:"id"`
			BadgeNumber string `json:"badge_number"`
		} `json:"data"`
		Pagination struct {
			NextCursor *string `json:"next_cursor"`
		} `json:"pagination"`
	}
	var empIDs []string
	for cursor := ""; ; {
		q := "/v1/employees?per_page=500"
		if cursor != "" {
			q += "&cursor=" + cursor
		}
		check(json.Unmarshal(s.api("GET", q, nil), &empList))
		for _, e := range empList.Data {
			empIDs = append(empIDs, e.ID)
		}
		if empList.Pagination.NextCursor == nil {
			break
		}
		cursor = *empList.Pagination.NextCursor
	}
	dbURL := *databaseURL
	if dbURL == "" {
		dbURL = "sqlite://" + filepath.Join(s.cmd.Dir, "data", "punchconnect.db")
	}
	s.stop()

	t0 := time.Now()
	loadPunches(dbURL, devList.Data, empIDs, serials, *queryRows)
	loadTime := time.Since(t0)

	s = restartServer(bin, s)
	defer s.stop()
	var lat []time.Duration
	rng := rand.New(rand.NewPCG(1, 2))
	base := time.Now().AddDate(0, 0, -365)
	const requests = 600
	kinds := []string{"device+day", "employee+month", "day", "device+day+cursor"}
	perKind := map[string][]time.Duration{}
	for i := range requests {
		day := base.AddDate(0, 0, rng.IntN(360)).Format("2006-01-02")
		kind := kinds[i%len(kinds)]
		var q string
		switch kind {
		case "device+day", "device+day+cursor":
			q = "device_id=" + devList.Data[rng.IntN(devices)].ID + "&start_date=" + day + "&end_date=" + day
		case "employee+month":
			start := base.AddDate(0, 0, rng.IntN(330))
			q = "employee_id=" + empIDs[rng.IntN(len(empIDs))] + "&start_date=" + start.Format("2006-01-02") + "&end_date=" + start.AddDate(0, 0, 30).Format("2006-01-02")
		case "day":
			q = "start_date=" + day + "&end_date=" + day
		}
		path := "/v1/attendance?per_page=50&" + q
		if kind == "device+day+cursor" {
			var page struct {
				Pagination struct {
					NextCursor *string `json:"next_cursor"`
				} `json:"pagination"`
			}
			check(json.Unmarshal(s.api("GET", path, nil), &page))
			if page.Pagination.NextCursor != nil {
				path += "&cursor=" + *page.Pagination.NextCursor
			}
		}
		t := time.Now()
		s.api("GET", path, nil)
		d := time.Since(t)
		lat = append(lat, d)
		perKind[kind] = append(perKind[kind], d)
	}
	q := func(l []time.Duration, p float64) time.Duration {
		slices.Sort(l)
		return l[int(float64(len(l)-1)*p)].Round(10 * time.Microsecond)
	}
	var parts []string
	for _, k := range kinds {
		parts = append(parts, fmt.Sprintf("%s p99 %v", k, q(perKind[k], 0.99)))
	}
	return []result{{
		name:   fmt.Sprintf("Filtered /v1/attendance page (50 rows) at %d punches, %d requests", *queryRows, requests),
		figure: fmt.Sprintf("p50 %v, p99 %v", q(lat, 0.5), q(lat, 0.99)),
		goal:   "p99 ≤ 20 ms",
		note:   strings.Join(parts, "; ") + fmt.Sprintf("; loaded in %v", loadTime.Round(time.Second)),
	}}
}

func restartServer(bin string, old *server) *server {
	args := []string{"--addr", "127.0.0.1:0"}
	if *databaseURL != "" {
		args = append(args, "--database-url", *databaseURL)
	}
	s := startServerIn(bin, old.cmd.Dir, args...)
	s.key = old.key
	return s
}

// loadPunches writes n accepted punches straight into the store, the way an
// import would: the punch indexes are dropped, the rows inserted in large
// transactions, and the indexes built again from their own definitions.
func loadPunches(dbURL string, devs []struct {
	ID string `json:"id"`
}, empIDs, serials []string, n int) {
	ctx := context.Background()
	driver, dsn := "sqlite", strings.TrimPrefix(dbURL, "sqlite://")
	if strings.HasPrefix(dbURL, "postgres") {
		driver, dsn = "pgx", dbURL
	} else {
		dsn = "file:" + dsn + "?_pragma=synchronous(OFF)&_pragma=journal_mode(WAL)&_pragma=cache_size(-262144)"
	}
	db, err := sql.Open(driver, dsn)
	check(err)
	defer db.Close()
	db.SetMaxOpenConns(1)
	var acct string
	check(db.QueryRowContext(ctx, "SELECT id FROM accounts ORDER BY created_at LIMIT 1").Scan(&acct))
	var defs []string
	if driver == "sqlite" {
		rows, err := db.QueryContext(ctx, "SELECT sql FROM sqlite_master WHERE type = 'index' AND tbl_name = 'punches' AND sql IS NOT NULL")
		check(err)
		for rows.Next() {
			var d string
			check(rows.Scan(&d))
			defs = append(defs, d)
		}
		rows.Close()
	} else {
		rows, err := db.QueryContext(ctx, "SELECT indexdef FROM pg_indexes WHERE tablename = 'punches' AND indexname NOT LIKE '%pkey' AND schemaname = current_schema()")
		check(err)
		for rows.Next() {
			var d string
			check(rows.Scan(&d))
			defs = append(defs, d)
		}
		rows.Close()
	}
	for _, d := range defs {
		name := indexName(d)
		_, err := db.ExecContext(ctx, "DROP INDEX "+name)
		check(err)
	}
	rng := rand.New(rand.NewPCG(7, 9))
	base := time.Now().AddDate(0, 0, -365).Truncate(24 * time.Hour)
	ist := time.FixedZone("IST", 19800)
	const cols = "(id, account_id, device_id, employee_id, badge_number, status, punch_time, device_time, local_time, local_date, work_date, received_at, direction, direction_source, state, verify, method, source, raw, dedup_key, created_at)"
	const perRow = 21
	const rowsPerStmt = 200
	placeholder := func(i int) string {
		if driver == "pgx" {
			return fmt.Sprintf("$%d", i)
		}
		return "?"
	}
	var sb strings.Builder
	sb.WriteString("INSERT INTO punches " + cols + " VALUES ")
	for r := range rowsPerStmt {
		if r > 0 {
			sb.WriteString(", ")
		}
		sb.WriteString("(")
		for c := range perRow {
			if c > 0 {
				sb.WriteString(", ")
			}
			sb.WriteString(placeholder(r*perRow + c + 1))
		}
		sb.WriteString(")")
	}
	insert := sb.String()
	start := time.Now()
	for done := 0; done < n; {
		tx, err := db.BeginTx(ctx, nil)
		check(err)
		st, err := tx.PrepareContext(ctx, insert)
		check(err)
		for k := 0; k < 250 && done < n; k++ {
			args := make([]any, 0, rowsPerStmt*perRow)
			for range rowsPerStmt {
				i := done
				done++
				d := i % len(devs)
				emp := empIDs[(i/len(devs))%len(empIDs)]
				t := base.Add(time.Duration(int64(i) * int64(365*24*time.Hour) / int64(n))).Add(time.Duration(rng.IntN(60)) * time.Second)
				local := t.In(ist)
				date := local.Year()*10000 + int(local.Month())*100 + local.Day()
				pid, _ := typeid.WithPrefix("pun")
				dt := local.Format("2006-01-02 15:04:05")
				args = append(args, pid.String(), acct, devs[d].ID, emp, "0", "accepted", t.UnixMicro(), dt, local.Format(time.RFC3339),
					date, date, t.UnixMicro(), []string{"in", "out"}[i%2], "inferred", 0, "1", "fingerprint", "push",
					"0\t"+dt+"\t0\t1\t0\t0\t0", fmt.Sprintf("d|%s|%d|%s", serials[d], i, dt), t.UnixMicro())
			}
			if done > n {
				break
			}
			_, err := st.ExecContext(ctx, args...)
			check(err)
		}
		st.Close()
		check(tx.Commit())
		if done%1_000_000 < 50_000 || done == n {
			fmt.Fprintf(os.Stderr, "loaded %d/%d punches (%.0f/s)\n", done, n, float64(done)/time.Since(start).Seconds())
		}
	}
	for _, d := range defs {
		t := time.Now()
		_, err := db.ExecContext(ctx, d)
		check(err)
		fmt.Fprintf(os.Stderr, "index %s built in %v\n", indexName(d), time.Since(t).Round(time.Second))
	}
	if driver == "sqlite" {
		_, err = db.ExecContext(ctx, "ANALYZE")
	} else {
		_, err = db.ExecContext(ctx, "ANALYZE punches")
	}
	check(err)
}

// indexName reads the name out of a CREATE [UNIQUE] INDEX statement.
func indexName(def string) string {
	f := strings.Fields(def)
	for i, w := range f {
		if strings.EqualFold(w, "INDEX") && i+1 < len(f) {
			return f[i+1]
		}
	}
	return ""
}
