// Package config holds the settings of the punchconnect commands. Every flag
// has an environment twin: --database-url is PUNCHCONNECT_DATABASE_URL. A
// flag on the command line wins over the environment, which wins over the
// default; the defaults start a working server with no configuration at all.
package config

import (
	"flag"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/punchconnect/punchconnect/internal/adms"
	"github.com/punchconnect/punchconnect/internal/delivery"
	"github.com/punchconnect/punchconnect/internal/httpapi"
	"github.com/punchconnect/punchconnect/internal/mail"
	"github.com/punchconnect/punchconnect/internal/store"
)

// EnvPrefix starts the environment twin of every flag.
const EnvPrefix = "PUNCHCONNECT_"

// Config is everything serve needs.
type Config struct {
	Addr               string
	DatabaseURL        string
	DatabaseMaxConns   int
	PublicURL          string
	LogLevel           string
	LogFormat          string
	ShutdownTimeout    time.Duration
	RequestTimeout     time.Duration
	RateLimitPerDevice int
	BootstrapName      string
	BootstrapEmail     string

	DeviceAddr         string
	DevicePollInterval time.Duration
	DeviceOfflineAfter time.Duration // 0: 3× the poll interval, at least 90 s
	TrustedProxies     string        // comma-separated CIDRs whose X-Forwarded-For is believed
	HeldUploadsMax     int64         // bytes kept for serials no account has registered
	PprofAddr          string        // optional listener for /debug/pprof (profiling)

	WebhookTimeout          time.Duration
	WebhookRetrySchedule    string // offsets from the first attempt
	AllowPrivateWebhookURLs bool
	SMTPURL                 string
	SMTPFrom                string

	// Retention: how long records are kept (0: forever).
	Retention store.Retention
}

// RetrySlots parses WebhookRetrySchedule into the slots' offsets, the first
// attempt's 0 included.
func (c *Config) RetrySlots() ([]time.Duration, error) {
	return delivery.ParseSchedule(c.WebhookRetrySchedule)
}

// OfflineAfter is how long without contact makes a device offline.
func (c *Config) OfflineAfter() time.Duration {
	if c.DeviceOfflineAfter > 0 {
		return c.DeviceOfflineAfter
	}
	return max(3*c.DevicePollInterval, 90*time.Second)
}

// Proxies parses TrustedProxies.
func (c *Config) Proxies() ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, s := range strings.Split(c.TrustedProxies, ",") {
		if s = strings.TrimSpace(s); s == "" {
			continue
		}
		p, err := netip.ParsePrefix(s)
		if err != nil {
			a, aerr := netip.ParseAddr(s)
			if aerr != nil {
				return nil, fmt.Errorf("--trusted-proxies: %q is not a CIDR such as 10.0.0.0/8", s)
			}
			p = netip.PrefixFrom(a, a.BitLen())
		}
		out = append(out, p.Masked())
	}
	return out, nil
}

// Default returns the zero-configuration settings.
func Default() Config {
	return Config{
		Addr:               ":8080",
		DatabaseURL:        store.DefaultURL,
		DatabaseMaxConns:   20,
		LogLevel:           "info",
		LogFormat:          "text",
		ShutdownTimeout:    30 * time.Second,
		RequestTimeout:     httpapi.DefaultRequestTimeout,
		RateLimitPerDevice: httpapi.DefaultRateLimitPerDevice,
		BootstrapName:      "Default",
		DevicePollInterval: adms.DefaultPollInterval,
		HeldUploadsMax:     adms.DefaultHeldTotal,

		WebhookTimeout:       delivery.DefaultTimeout,
		WebhookRetrySchedule: delivery.DefaultSchedule,
		Retention: store.Retention{
			Events: 90 * day, Attempts: 30 * day, Uploads: 30 * day, Commands: 30 * day, Notifications: 90 * day,
		},
	}
}

// DatabaseFlags registers the flags every command that opens the store takes.
func (c *Config) DatabaseFlags(fs *flag.FlagSet) {
	fs.StringVar(&c.DatabaseURL, "database-url", c.DatabaseURL, "store: sqlite://PATH or postgres://USER:PASS@HOST:PORT/DB")
	fs.IntVar(&c.DatabaseMaxConns, "database-max-conns", c.DatabaseMaxConns, "most open PostgreSQL connections of this node")
}

// ServeFlags registers the flags of `punchconnect serve`.
func (c *Config) ServeFlags(fs *flag.FlagSet) {
	c.DatabaseFlags(fs)
	fs.StringVar(&c.Addr, "addr", c.Addr, "HTTP listen address for /v1, /iclock, /docs and /metrics")
	fs.StringVar(&c.PublicURL, "public-url", c.PublicURL, "base URL clients reach this server at; used in doc_url and links (default: from --addr)")
	fs.StringVar(&c.LogLevel, "log-level", c.LogLevel, "debug, info, warn or error")
	fs.StringVar(&c.LogFormat, "log-format", c.LogFormat, "text or json")
	fs.DurationVar(&c.ShutdownTimeout, "shutdown-timeout", c.ShutdownTimeout, "how long SIGINT/SIGTERM waits for in-flight requests")
	fs.DurationVar(&c.RequestTimeout, "request-timeout", c.RequestTimeout, "longest a /v1 request may work")
	fs.IntVar(&c.RateLimitPerDevice, "rate-limit-per-device", c.RateLimitPerDevice, "daily REST calls per registered device (and the minimum per account)")
	fs.StringVar(&c.BootstrapName, "bootstrap-name", c.BootstrapName, "name of the account made on first start with an empty store")
	fs.StringVar(&c.BootstrapEmail, "bootstrap-email", c.BootstrapEmail, "e-mail of the account made on first start (receives failure e-mails)")
	fs.StringVar(&c.DeviceAddr, "device-addr", c.DeviceAddr, "optional second listen address serving only the device gateway (/iclock/*)")
	fs.DurationVar(&c.DevicePollInterval, "device-poll-interval", c.DevicePollInterval, "how often devices are told to poll (Delay): the heartbeat and command latency")
	fs.DurationVar(&c.DeviceOfflineAfter, "device-offline-after", c.DeviceOfflineAfter, "silence after which a device is offline (default 3× the poll interval, at least 90s)")
	fs.StringVar(&c.TrustedProxies, "trusted-proxies", c.TrustedProxies, "comma-separated CIDRs of reverse proxies whose X-Forwarded-For gives the device address")
	fs.Int64Var(&c.HeldUploadsMax, "held-uploads-max-bytes", c.HeldUploadsMax, "space for uploads of serials no account has registered yet")
	fs.StringVar(&c.PprofAddr, "pprof-addr", c.PprofAddr, "optional listen address for Go's /debug/pprof profiles (keep it on loopback)")
	fs.DurationVar(&c.WebhookTimeout, "webhook-timeout", c.WebhookTimeout, "how long a webhook endpoint has to answer one delivery")
	fs.StringVar(&c.WebhookRetrySchedule, "webhook-retry-schedule", c.WebhookRetrySchedule,
		"retries of a failed delivery: offsets from the first attempt; the last is the final attempt")
	fs.BoolVar(&c.AllowPrivateWebhookURLs, "allow-private-webhook-urls", c.AllowPrivateWebhookURLs,
		"let webhooks reach loopback, private and link-local addresses (local development; never on a shared server)")
	fs.StringVar(&c.SMTPURL, "smtp-url", c.SMTPURL, "SMTP server for failure e-mails: smtp://user:pass@host:port (STARTTLS when offered) or smtps://…")
	fs.StringVar(&c.SMTPFrom, "smtp-from", c.SMTPFrom, "From address of failure e-mails, such as PunchConnect <alerts@example.com>")
	fs.Var((*Days)(&c.Retention.Events), "retain-events", "keep events (with their deliveries) this long, such as 90d; 0 keeps them forever. Replays reach back this far")
	fs.Var((*Days)(&c.Retention.Attempts), "retain-attempts", "keep the log of delivery attempts this long; 0 keeps it forever")
	fs.Var((*Days)(&c.Retention.Uploads), "retain-uploads", "keep device bodies kept for inspection (photos, operation logs, unreadable bodies) this long; 0 keeps them")
	fs.Var((*Days)(&c.Retention.Commands), "retain-commands", "keep finished commands and their lines this long; 0 keeps them")
	fs.Var((*Days)(&c.Retention.Notifications), "retain-notifications", "keep sent failure e-mails this long; 0 keeps them")
}

const day = 24 * time.Hour

// Days is a duration flag that also takes days: "90d", "36h", "0".
type Days time.Duration

func (d *Days) String() string {
	v := time.Duration(*d)
	if v > 0 && v%day == 0 {
		return fmt.Sprintf("%dd", v/day)
	}
	return v.String()
}

// Set parses "<n>d" or a Go duration.
func (d *Days) Set(s string) error {
	if n, ok := strings.CutSuffix(s, "d"); ok {
		v, err := strconv.Atoi(n)
		if err != nil || v < 0 {
			return fmt.Errorf("%q: want days such as 90d, or a duration such as 36h", s)
		}
		*d = Days(time.Duration(v) * day)
		return nil
	}
	v, err := time.ParseDuration(s)
	if err != nil || v < 0 {
		return fmt.Errorf("%q: want days such as 90d, or a duration such as 36h", s)
	}
	*d = Days(v)
	return nil
}

// Validate checks values flags cannot check themselves.
func (c *Config) Validate() error {
	switch c.LogFormat {
	case "text", "json":
	default:
		return fmt.Errorf("--log-format %q: want text or json", c.LogFormat)
	}
	switch strings.ToLower(c.LogLevel) {
	case "debug", "info", "warn", "error":
	default:
		return fmt.Errorf("--log-level %q: want debug, info, warn or error", c.LogLevel)
	}
	if c.RateLimitPerDevice < 1 {
		return fmt.Errorf("--rate-limit-per-device must be at least 1")
	}
	if c.PublicURL != "" && !strings.HasPrefix(c.PublicURL, "http://") && !strings.HasPrefix(c.PublicURL, "https://") {
		return fmt.Errorf("--public-url %q: want an http:// or https:// URL", c.PublicURL)
	}
	if c.DevicePollInterval < time.Second || c.DevicePollInterval > 10*time.Minute {
		return fmt.Errorf("--device-poll-interval must be between 1s and 10m")
	}
	if c.DeviceOfflineAfter < 0 {
		return fmt.Errorf("--device-offline-after must not be negative")
	}
	if _, err := c.Proxies(); err != nil {
		return err
	}
	if c.WebhookTimeout < 100*time.Millisecond || c.WebhookTimeout > 5*time.Minute {
		return fmt.Errorf("--webhook-timeout must be between 100ms and 5m")
	}
	if _, err := c.RetrySlots(); err != nil {
		return err
	}
	if e := c.Retention.Events; e > 0 && e < 4*day {
		return fmt.Errorf("--retain-events must be at least 4d (deliveries are retried for 72 h), or 0 to keep events forever")
	}
	if c.SMTPURL != "" {
		if c.SMTPFrom == "" {
			return fmt.Errorf("--smtp-url is set but --smtp-from is not: failure e-mails need a From address")
		}
		if _, err := mail.NewSMTP(c.SMTPURL, c.SMTPFrom); err != nil {
			return err
		}
	}
	return nil
}

// EnvName is the environment twin of a flag.
func EnvName(flagName string) string {
	return EnvPrefix + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

// Parse parses args into fs, then fills every flag not given on the command
// line from its environment twin, read through getenv.
func Parse(fs *flag.FlagSet, args []string, getenv func(string) string) error {
	if err := fs.Parse(args); err != nil {
		return err
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	var err error
	fs.VisitAll(func(f *flag.Flag) {
		if set[f.Name] || err != nil {
			return
		}
		if v := getenv(EnvName(f.Name)); v != "" {
			if e := fs.Set(f.Name, v); e != nil {
				err = fmt.Errorf("%s=%q: %w", EnvName(f.Name), v, e)
			}
		}
	})
	return err
}

// Usage prints the flags of fs with their environment twins.
func Usage(fs *flag.FlagSet, synopsis string) func() {
	return func() {
		out := fs.Output()
		fmt.Fprintf(out, "Usage: %s\n\nFlags (each also read from the environment variable shown):\n", synopsis)
		fs.VisitAll(func(f *flag.Flag) {
			def := ""
			if f.DefValue != "" && f.DefValue != "false" {
				def = fmt.Sprintf(" (default %s)", f.DefValue)
			}
			fmt.Fprintf(out, "  --%s  [%s]\n      %s%s\n", f.Name, EnvName(f.Name), f.Usage, def)
		})
	}
}

// DefaultPublicURL derives a public URL from the address a server listens on.
func DefaultPublicURL(listenAddr net.Addr) string {
	host, port, err := net.SplitHostPort(listenAddr.String())
	if err != nil {
		return "http://localhost"
	}
	if ip := net.ParseIP(host); host == "" || ip != nil && ip.IsUnspecified() {
		host = "localhost"
	}
	return "http://" + net.JoinHostPort(host, port)
}
