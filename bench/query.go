package main

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
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
	dbURL := s.storeURL()
	s.stop()

	t0 := time.Now()
	loadPunches(dbURL, devList.Data, empIDs, serials, *queryRows)
	loadTime := time.Since(t0)

	s = s.restart(bin, dir)
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
	var parts []string
	for _, k := range kinds {
		parts = append(parts, fmt.Sprintf("%s p99 %s", k, ms(quantile(sortedCopy(perKind[k]), 0.99))))
	}
	lat = sortedCopy(lat)
	p99 := quantile(lat, 0.99)
	return []result{{
		name:   fmt.Sprintf("Filtered /v1/attendance page of 50 at %d punches (%d sequential requests)", *queryRows, requests),
		figure: fmt.Sprintf("p50 %s, p99 %s", ms(quantile(lat, 0.5)), ms(p99)),
		limit:  "—", ratio: "—", goal: "p99 ≤ 20 ms", met: p99 <= 20*time.Millisecond, rss: s.peakRSS(),
		note: strings.Join(parts, "; ") + fmt.Sprintf("; loaded straight into the store in %v", loadTime.Round(time.Second)),
	}}
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
		defs = queryStrings(ctx, db, "SELECT sql FROM sqlite_master WHERE type = 'index' AND tbl_name = 'punches' AND sql IS NOT NULL")
	} else {
		defs = queryStrings(ctx, db, `SELECT indexdef FROM pg_indexes i WHERE tablename = 'punches' AND schemaname = current_schema()
			AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conname = i.indexname)`)
	}
	for _, d := range defs {
		name := indexName(d)
		_, err := db.ExecContext(ctx, "DROP INDEX "+name)
		check(err)
	}
	devIDs := make([]string, len(devs))
	for i, d := range devs {
		devIDs[i] = d.ID
	}
	g := &rowGen{acct: acct, devs: devIDs, serials: serials, emps: empIDs, span: 365 * 24 * time.Hour, n: n,
		base: time.Now().AddDate(0, 0, -365).Truncate(24 * time.Hour), rng: rand.New(rand.NewPCG(7, 9)), key: "d"}
	const rowsPerStmt = 200
	insert := insertSQL(driver, rowsPerStmt)
	start := time.Now()
	for done := 0; done < n; {
		tx, err := db.BeginTx(ctx, nil)
		check(err)
		st, err := tx.PrepareContext(ctx, insert)
		check(err)
		for k := 0; k < 250 && done+rowsPerStmt <= n; k++ {
			_, err := st.ExecContext(ctx, g.rows(done, rowsPerStmt)...)
			check(err)
			done += rowsPerStmt
		}
		st.Close()
		check(tx.Commit())
		if done%1_000_000 < 50_000 || done == n {
			fmt.Fprintf(os.Stderr, "loaded %d/%d punches (%.0f/s)\n", done, n, float64(done)/time.Since(start).Seconds())
		}
		if n-done < rowsPerStmt {
			break
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

// punchCols are the columns the direct loaders write.
const punchCols = "(id, account_id, device_id, employee_id, badge_number, status, punch_time, device_time, local_time, local_date, work_date, received_at, direction, direction_source, state, verify, method, source, raw, dedup_key, created_at)"

const punchColCount = 21

// insertSQL is a multi-row INSERT of rows punches.
func insertSQL(driver string, rows int) string {
	var sb strings.Builder
	sb.WriteString("INSERT INTO punches " + punchCols + " VALUES ")
	for r := range rows {
		if r > 0 {
			sb.WriteString(", ")
		}
		sb.WriteString("(")
		for c := range punchColCount {
			if c > 0 {
				sb.WriteString(", ")
			}
			if driver == "pgx" {
				fmt.Fprintf(&sb, "$%d", r*punchColCount+c+1)
			} else {
				sb.WriteString("?")
			}
		}
		sb.WriteString(")")
	}
	return sb.String()
}

// rowGen makes accepted punch rows as ingest stores them: the i-th of n
// spread over span from base, on devices and employees in turn.
type rowGen struct {
	acct                string
	devs, serials, emps []string
	base                time.Time
	span                time.Duration
	n                   int
	rng                 *rand.Rand
	key                 string // dedup key prefix, distinct per loader
}

var ist = time.FixedZone("IST", 19800)

// rows are the arguments of count rows from the i-th on.
func (g *rowGen) rows(i, count int) []any {
	args := make([]any, 0, count*punchColCount)
	for k := i; k < i+count; k++ {
		d := k % len(g.devs)
		emp := g.emps[(k/len(g.devs))%len(g.emps)]
		t := g.base.Add(time.Duration(int64(k) * int64(g.span) / int64(g.n))).Add(time.Duration(g.rng.IntN(60)) * time.Second)
		local := t.In(ist)
		date := local.Year()*10000 + int(local.Month())*100 + local.Day()
		pid, _ := typeid.WithPrefix("pun")
		dt := local.Format("2006-01-02 15:04:05")
		args = append(args, pid.String(), g.acct, g.devs[d], emp, "0", "accepted", t.UnixMicro(), dt, local.Format(time.RFC3339),
			date, date, t.UnixMicro(), []string{"in", "out"}[k%2], "inferred", 0, "1", "fingerprint", "push",
			"0\t"+dt+"\t0\t1\t0\t0\t0", fmt.Sprintf("%s|%s|%d|%s", g.key, g.serials[d], k, dt), t.UnixMicro())
	}
	return args
}
