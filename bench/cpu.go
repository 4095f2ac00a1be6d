package main

// Where a scenario's CPU goes. On this machine the bench, the server and
// PostgreSQL share the cores, so a figure that fills them is bounded by what
// each request costs all three: the scenarios that do (ingest, real-time)
// read the CPU time of each from /proc at the start and the end of their
// measured run and print it per request beside the figure, with how busy the
// whole machine was.

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// userHZ is the unit of /proc's CPU times: USER_HZ, 100 on every Linux
// architecture Go runs on.
const userHZ = 100

// cpuSample is CPU time used so far: by the server's nodes, by the
// PostgreSQL processes of this machine (none when the database is
// elsewhere or the store is SQLite), by this bench process (clients,
// receiver and any limit it serves itself), and by the whole machine
// (busy of total, summed over its cores).
type cpuSample struct {
	server, db, bench, busy, total time.Duration
	ok                             bool // /proc was readable
}

// cpuNow samples the CPU time of the machine, the bench, the server's nodes
// (none for s == nil: a limit that does without the server) and, with db,
// PostgreSQL.
func cpuNow(s *server, db bool) cpuSample {
	var c cpuSample
	busy, total, err := machineTicks()
	if err != nil {
		return c
	}
	c.ok = true
	c.busy, c.total = ticks(busy), ticks(total)
	c.bench = ticks(procTicks("/proc/self"))
	if s != nil {
		for _, n := range s.nodes {
			c.server += ticks(procTicks(fmt.Sprintf("/proc/%d", n.cmd.Process.Pid)))
		}
	}
	if !db {
		return c
	}
	dirs, _ := filepath.Glob("/proc/[0-9]*")
	for _, d := range dirs {
		if comm, err := os.ReadFile(d + "/comm"); err == nil && strings.TrimSpace(string(comm)) == "postgres" {
			c.db += ticks(procTicks(d))
		}
	}
	return c
}

func ticks(n int64) time.Duration { return time.Duration(n) * time.Second / userHZ }

// procTicks is a process's user and system time with its reaped children's
// (PostgreSQL's postmaster reaps the backends that end during a run), or 0
// when the process is gone.
func procTicks(dir string) int64 {
	data, err := os.ReadFile(dir + "/stat")
	if err != nil {
		return 0
	}
	// The command name, in parentheses, may hold spaces: fields count from
	// after it. utime, stime, cutime and cstime are fields 14 to 17.
	i := strings.LastIndexByte(string(data), ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(string(data[i+1:]))
	if len(f) < 15 {
		return 0
	}
	var sum int64
	for _, v := range f[11:15] {
		n, _ := strconv.ParseInt(v, 10, 64)
		sum += n
	}
	return sum
}

// machineTicks is the machine's busy and total time over all its cores
// (/proc/stat's first line; idle and I/O wait count as not busy).
func machineTicks() (busy, total int64, err error) {
	data, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, 0, err
	}
	line, _, _ := strings.Cut(string(data), "\n")
	f := strings.Fields(line)
	if len(f) < 6 || f[0] != "cpu" {
		return 0, 0, fmt.Errorf("/proc/stat: unexpected first line %q", line)
	}
	var idle int64
	for i, v := range f[1:] {
		n, _ := strconv.ParseInt(v, 10, 64)
		if i >= 7 { // steal is another guest's time; guest times are counted in user
			break
		}
		total += n
		if i == 3 || i == 4 {
			idle += n
		}
	}
	return total - idle, total, nil
}

// perOp describes the CPU used between from and c, per operation of n
// ("request", "punch"): "" when /proc could not be read.
func (c cpuSample) perOp(from cpuSample, n int64, what string) string {
	if !c.ok || !from.ok || n <= 0 || c.total <= from.total {
		return ""
	}
	per := func(d time.Duration) string {
		return fmt.Sprintf("%.0f µs", float64(d)/float64(time.Microsecond)/float64(n))
	}
	parts := []string{}
	if srv := c.server - from.server; srv > 0 {
		parts = append(parts, "server "+per(srv))
	}
	if db := c.db - from.db; db > 0 {
		parts = append(parts, "PostgreSQL "+per(db))
	}
	parts = append(parts, "bench "+per(c.bench-from.bench))
	all := c.busy - from.busy
	return fmt.Sprintf("CPU a %s: %s; the whole machine %s, %.0f%% busy", what, strings.Join(parts, ", "), per(all),
		100*float64(all)/float64(c.total-from.total))
}

// joinNotes joins the non-empty parts of a result's note.
func joinNotes(parts ...string) string {
	var out []string
	for _, p := range parts {
		if p != "" {
			out = append(out, p)
		}
	}
	return strings.Join(out, "; ")
}
