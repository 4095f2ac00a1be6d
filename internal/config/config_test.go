package config

import (
	"flag"
	"io"
	"net"
	"testing"
	"time"
)

func TestEnvTwins(t *testing.T) {
	env := map[string]string{
		"PUNCHCONNECT_DATABASE_URL":     "postgres://env/db",
		"PUNCHCONNECT_ADDR":             ":9999",
		"PUNCHCONNECT_SHUTDOWN_TIMEOUT": "5s",
	}
	cfg := Default()
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	cfg.ServeFlags(fs)
	if err := Parse(fs, []string{"--addr", ":7000"}, func(k string) string { return env[k] }); err != nil {
		t.Fatal(err)
	}
	if cfg.Addr != ":7000" {
		t.Errorf("flag must win over environment: addr %q", cfg.Addr)
	}
	if cfg.DatabaseURL != "postgres://env/db" || cfg.ShutdownTimeout != 5*time.Second {
		t.Errorf("environment not applied: %+v", cfg)
	}
	if cfg.LogFormat != "text" {
		t.Errorf("default lost: %q", cfg.LogFormat)
	}

	bad := Default()
	fs = flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	bad.ServeFlags(fs)
	err := Parse(fs, nil, func(k string) string {
		if k == "PUNCHCONNECT_RATE_LIMIT_PER_DEVICE" {
			return "many"
		}
		return ""
	})
	if err == nil {
		t.Fatal("a bad environment value must fail")
	}
}

func TestEveryFlagHasATwin(t *testing.T) {
	cfg := Default()
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	cfg.ServeFlags(fs)
	fs.VisitAll(func(f *flag.Flag) {
		if EnvName(f.Name) == EnvPrefix {
			t.Errorf("flag %s has no twin", f.Name)
		}
	})
	if EnvName("database-url") != "PUNCHCONNECT_DATABASE_URL" {
		t.Fatal(EnvName("database-url"))
	}
}

func TestValidate(t *testing.T) {
	if d := Default(); d.Validate() != nil {
		t.Fatal("defaults invalid")
	}
	for _, mutate := range []func(*Config){
		func(c *Config) { c.LogFormat = "xml" },
		func(c *Config) { c.LogLevel = "loud" },
		func(c *Config) { c.RateLimitPerDevice = 0 },
		func(c *Config) { c.PublicURL = "example.com" },
	} {
		c := Default()
		mutate(&c)
		if c.Validate() == nil {
			t.Errorf("accepted %+v", c)
		}
	}
}

func TestDefaultPublicURL(t *testing.T) {
	for _, tc := range []struct{ addr, want string }{
		{"0.0.0.0:8080", "http://localhost:8080"},
		{"[::]:8080", "http://localhost:8080"},
		{"127.0.0.1:9000", "http://127.0.0.1:9000"},
	} {
		a, err := net.ResolveTCPAddr("tcp", tc.addr)
		if err != nil {
			t.Fatal(err)
		}
		if got := DefaultPublicURL(a); got != tc.want {
			t.Errorf("DefaultPublicURL(%s) = %s, want %s", tc.addr, got, tc.want)
		}
	}
}

func TestRetentionFlags(t *testing.T) {
	cfg := Default()
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	cfg.ServeFlags(fs)
	if err := Parse(fs, []string{"--retain-events", "120d", "--retain-attempts", "36h", "--retain-uploads", "0"}, func(string) string { return "" }); err != nil {
		t.Fatal(err)
	}
	if cfg.Retention.Events != 120*24*time.Hour || cfg.Retention.Attempts != 36*time.Hour || cfg.Retention.Uploads != 0 || cfg.Retention.Commands != 30*24*time.Hour {
		t.Fatalf("retention %+v", cfg.Retention)
	}
	if f := fs.Lookup("retain-events"); f.Value.String() != "120d" || f.DefValue != "90d" {
		t.Fatalf("flag shows %q, default %q", f.Value.String(), f.DefValue)
	}
	for _, bad := range []string{"-1d", "ninety", "5x"} {
		if err := (new(Days)).Set(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
	cfg.Retention.Events = 24 * time.Hour
	if err := cfg.Validate(); err == nil {
		t.Error("a retention shorter than the retry schedule was accepted")
	}
}
