package main

import (
	"context"
	"database/sql"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strings"
	"time"
)

// target is what the scenarios run against.
type target struct {
	name     string
	postgres bool
	nodes    int
}

var targets = map[string]target{
	"sqlite":    {name: "SQLite", nodes: 1},
	"postgres":  {name: "PostgreSQL, 1 node", postgres: true, nodes: 1},
	"postgres3": {name: "PostgreSQL, 3 nodes", postgres: true, nodes: 3},
}

// cur is the target of the scenario running.
var cur target

// result is one figure: ours, the limit of this machine for the same work
// measured in the same run, and their ratio.
type result struct {
	name   string
	figure string
	limit  string // "—" when no limit applies
	ratio  string
	goal   string
	met    bool
	rss    float64 // MB, the highest of the nodes
	note   string
}

type section struct {
	target  target
	results []result
	skipped string
}

func ratio(ours, limit float64) string {
	if limit <= 0 {
		return "—"
	}
	return fmt.Sprintf("%.0f%%", 100*ours/limit)
}

// PostgreSQL: an admin URL, and the throwaway cluster started for the run.
var (
	pgStarted string // directory of the cluster this run started
	pgChecked bool
	pgOK      bool
	pgDBs     []string
)

// postgresReady makes sure a PostgreSQL server is there: -postgres-url, or
// a throwaway cluster started with .ci/start-postgres (root, PostgreSQL 15).
func postgresReady() bool {
	if pgChecked {
		return pgOK
	}
	pgChecked = true
	if *pgURL == "" {
		out, err := exec.Command(".ci/start-postgres").Output()
		if err != nil {
			fmt.Fprintf(os.Stderr, "bench: no -postgres-url and .ci/start-postgres failed (%v): PostgreSQL is skipped\n", err)
			return false
		}
		for _, line := range strings.Split(string(out), "\n") {
			if v, ok := strings.CutPrefix(line, "export PUNCHCONNECT_TEST_DATABASE_URL="); ok {
				*pgURL = strings.Trim(v, "'")
			}
			if v, ok := strings.CutPrefix(line, "export PUNCHCONNECT_TEST_PGDIR="); ok {
				pgStarted = strings.Trim(v, "'")
			}
		}
	}
	db, err := sql.Open("pgx", *pgURL)
	if err == nil {
		err = db.Ping()
		db.Close()
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "bench: PostgreSQL at %s: %v\n", *pgURL, err)
		return false
	}
	pgOK = true
	return true
}

func stopPostgres() {
	if len(pgDBs) > 0 {
		if db, err := sql.Open("pgx", *pgURL); err == nil {
			for _, name := range pgDBs {
				_, _ = db.Exec("DROP DATABASE IF EXISTS " + name + " WITH (FORCE)")
			}
			db.Close()
		}
		pgDBs = nil
	}
	if pgStarted != "" {
		_ = exec.Command(".ci/stop-postgres", pgStarted).Run()
		pgStarted = ""
	}
}

// freshDatabase is the URL of a new, empty database for one scenario on
// PostgreSQL, or "" (SQLite in the server's directory).
func freshDatabase() string {
	if !cur.postgres {
		return ""
	}
	name := fmt.Sprintf("punchbench_%d_%d", os.Getpid(), len(pgDBs)+1)
	db, err := sql.Open("pgx", *pgURL)
	check(err)
	defer db.Close()
	// The previous scenario is over: its database goes, so that autovacuum
	// working through it does not take the machine from this one.
	for _, old := range pgDBs {
		_, _ = db.Exec("DROP DATABASE IF EXISTS " + old + " WITH (FORCE)")
	}
	_, err = db.Exec("CREATE DATABASE " + name)
	check(err)
	pgDBs = append(pgDBs, name)
	u, err := url.Parse(*pgURL)
	check(err)
	u.Path = "/" + name
	return u.String()
}

// machine describes this computer for the results' header.
func machine() string {
	host, _ := os.Hostname()
	model := "unknown CPU"
	if data, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(data), "\n") {
			if v, ok := strings.CutPrefix(line, "model name"); ok {
				model = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(v), ":"))
				break
			}
		}
	}
	mem := ""
	if data, err := os.ReadFile("/proc/meminfo"); err == nil {
		var kb int
		fmt.Sscanf(strings.TrimPrefix(strings.Split(string(data), "\n")[0], "MemTotal:"), "%d", &kb)
		mem = fmt.Sprintf(", %.0f GiB", float64(kb)/(1<<20))
	}
	return fmt.Sprintf("%s, %d cores (%s)%s, %s/%s", host, runtime.NumCPU(), model, mem, runtime.GOOS, runtime.GOARCH)
}

// write appends the run's results; failed, when set, says why it stopped
// before the end.
func write(sections []section, took time.Duration, failed string) {
	commit := strings.TrimSpace(output("git", "rev-parse", "--short", "HEAD"))
	if strings.TrimSpace(output("git", "status", "--porcelain", "--untracked-files=no")) != "" {
		commit += " (with uncommitted changes)"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "\n## Suite of %s — commit %s\n\n", time.Now().UTC().Format("2006-01-02 15:04 MST"), commit)
	fmt.Fprintf(&b, "Machine: %s; %s. `go run ./bench -scenarios %s -stores %s -duration %v -query-rows %d` took %v.\n",
		machine(), runtime.Version(), *scenarios, *stores, *duration, *queryRows, took.Round(time.Second))
	fmt.Fprintln(&b, "Each limit is this machine doing the least work of the same kind, measured in the same run just after our figure.")
	if failed != "" {
		fmt.Fprintf(&b, "\n**The run stopped early:** %s\n", failed)
	}
	for _, sec := range sections {
		fmt.Fprintf(&b, "\n### %s\n\n", sec.target.name)
		if sec.skipped != "" {
			fmt.Fprintf(&b, "Not measured: %s.\n", sec.skipped)
			continue
		}
		fmt.Fprintln(&b, "| figure | ours | limit of this machine | ratio | goal | | peak RSS |")
		fmt.Fprintln(&b, "| --- | --- | --- | --- | --- | --- | --- |")
		var notes []string
		for _, r := range sec.results {
			mark := "✗"
			if r.met {
				mark = "✓"
			}
			fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s | %.0f MB |\n", r.name, r.figure, r.limit, r.ratio, r.goal, mark, r.rss)
			if r.note != "" {
				notes = append(notes, fmt.Sprintf("- %s: %s", r.name, r.note))
			}
		}
		if len(notes) > 0 {
			fmt.Fprintf(&b, "\n%s\n", strings.Join(notes, "\n"))
		}
	}
	fmt.Print(b.String())
	if *out == "" {
		return
	}
	f, err := os.OpenFile(*out, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	check(err)
	defer f.Close()
	_, err = f.WriteString(b.String())
	check(err)
}

// quantile of sorted latencies.
func quantile(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	return sorted[int(float64(len(sorted)-1)*q)]
}

func sortedCopy(l []time.Duration) []time.Duration {
	c := slices.Clone(l)
	slices.Sort(c)
	return c
}

func ms(d time.Duration) string {
	return fmt.Sprintf("%.2f ms", float64(d)/float64(time.Millisecond))
}

// queryStrings runs a query of one text column and returns its values.
func queryStrings(ctx context.Context, db *sql.DB, query string) []string {
	rows, err := db.QueryContext(ctx, query)
	check(err)
	defer rows.Close()
	var out []string
	for rows.Next() {
		var v string
		check(rows.Scan(&v))
		out = append(out, v)
	}
	check(rows.Err())
	return out
}

// openStoreDB opens the store of s with database/sql, for the limits that
// write to it directly; commits are as durable as the server's.
func openStoreDB(storeURL string) (*sql.DB, string) {
	if strings.HasPrefix(storeURL, "postgres") {
		db, err := sql.Open("pgx", storeURL)
		check(err)
		return db, "pgx"
	}
	db, err := sql.Open("sqlite", "file:"+strings.TrimPrefix(storeURL, "sqlite://")+
		"?_pragma=journal_mode(WAL)&_pragma=synchronous(FULL)&_pragma=busy_timeout(10000)&_pragma=cache_size(-65536)&_txlock=immediate")
	check(err)
	db.SetMaxOpenConns(1)
	return db, "sqlite"
}
