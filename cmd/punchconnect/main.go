// Command punchconnect is the PunchConnect server and its tools.
//
//	punchconnect serve                         run the API and the device gateway
//	punchconnect accounts create --name --email   make an account and print its API key
//	punchconnect migrate                       bring the database schema up to date
//	punchconnect backup --to FILE              copy a SQLite store while it serves
//	punchconnect simulate --api-key KEY        emulate ZKTeco devices pushing punches
//	punchconnect listen --forward-to URL       forward the account's events to a local URL
//	punchconnect version                       print the version
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/url"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/punchconnect/punchconnect/internal/app"
	"github.com/punchconnect/punchconnect/internal/attendance"
	"github.com/punchconnect/punchconnect/internal/config"
	"github.com/punchconnect/punchconnect/internal/listen"
	"github.com/punchconnect/punchconnect/internal/simulator"
	"github.com/punchconnect/punchconnect/internal/store"
)

const usage = `PunchConnect: biometric attendance in, clean signed webhooks out.

Usage:
  punchconnect serve [flags]              run the API (/v1) and the device gateway (/iclock)
  punchconnect accounts create --name NAME --email EMAIL [--json]
                                          make an account and print its API key (shown once)
  punchconnect migrate [flags]            bring the database schema up to date and exit
  punchconnect backup --to FILE [flags]   copy the SQLite store, consistent, while the server runs
  punchconnect devices unclaimed [--json] list serial numbers that reached the gateway unregistered
  punchconnect simulate --server URL --api-key KEY [--devices N] [--rate R]
                                          emulate ZKTeco time clocks speaking PUSH to a server
  punchconnect listen --server URL --api-key KEY --forward-to URL [--events TYPES]
                                          forward the account's events, signed, to a local URL
  punchconnect version                    print the version

Every flag has an environment twin: --database-url is PUNCHCONNECT_DATABASE_URL.
Run "punchconnect <command> --help" for the flags of a command.
`

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr, os.Getenv))
}

// run executes one command and returns the process exit code.
func run(args []string, stdout, stderr io.Writer, getenv func(string) string) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	var err error
	switch args[0] {
	case "serve":
		err = serve(args[1:], stdout, stderr, getenv)
	case "accounts":
		err = accounts(args[1:], stdout, stderr, getenv)
	case "migrate":
		err = migrate(args[1:], stdout, stderr, getenv)
	case "backup":
		err = backup(args[1:], stdout, stderr, getenv)
	case "devices":
		err = devices(args[1:], stdout, stderr, getenv)
	case "simulate":
		err = simulate(args[1:], stdout, stderr, getenv)
	case "listen":
		err = listenCmd(args[1:], stdout, stderr, getenv)
	case "version", "--version", "-version":
		fmt.Fprintln(stdout, "punchconnect", app.VersionString())
	case "help", "--help", "-help", "-h":
		fmt.Fprint(stdout, usage)
	default:
		fmt.Fprintf(stderr, "punchconnect: unknown command %q\n\n%s", args[0], usage)
		return 2
	}
	switch {
	case errors.Is(err, flag.ErrHelp):
		return 0
	case errors.Is(err, errUsage):
		return 2
	case err != nil:
		fmt.Fprintf(stderr, "punchconnect %s: %v\n", args[0], err)
		return 1
	}
	return 0
}

// errUsage marks an error already explained by the flag package.
var errUsage = errors.New("usage")

func newFlagSet(name, synopsis string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = config.Usage(fs, synopsis)
	return fs
}

func parse(fs *flag.FlagSet, args []string, getenv func(string) string) error {
	if err := config.Parse(fs, args, getenv); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		if strings.HasPrefix(err.Error(), config.EnvPrefix) {
			return err
		}
		return errUsage
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(fs.Output(), "unexpected argument %q\n", fs.Arg(0))
		fs.Usage()
		return errUsage
	}
	return nil
}

func serve(args []string, stdout, stderr io.Writer, getenv func(string) string) error {
	cfg := config.Default()
	fs := newFlagSet("serve", "punchconnect serve [flags]", stderr)
	cfg.ServeFlags(fs)
	if err := parse(fs, args, getenv); err != nil {
		return err
	}
	if err := cfg.Validate(); err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	m := &app.Main{Config: cfg, Stdout: stdout, Logger: app.NewLogger(cfg, stderr)}
	if err := m.Run(ctx); err != nil {
		if m.Store != nil {
			m.Store.Close()
		}
		return err
	}
	select {
	case <-ctx.Done():
		m.Logger.Info("shutting down: finishing in-flight requests", "timeout", cfg.ShutdownTimeout)
	case <-m.Done():
	}
	stop() // a second signal now kills the process at once
	shutdownCtx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
	defer cancel()
	err := m.Close(shutdownCtx)
	if err == nil {
		m.Logger.Info("stopped")
	}
	return err
}

// openStore opens and migrates the store of cfg, returning the migrations it applied.
func openStore(ctx context.Context, cfg config.Config) (*store.Store, []string, error) {
	s, err := store.Open(ctx, cfg.DatabaseURL, store.Options{MaxConns: min(cfg.DatabaseMaxConns, 4)})
	if err != nil {
		return nil, nil, err
	}
	applied, err := s.Migrate(ctx)
	if err != nil {
		s.Close()
		return nil, nil, err
	}
	return s, applied, nil
}

func accounts(args []string, stdout, stderr io.Writer, getenv func(string) string) error {
	if len(args) == 0 || args[0] != "create" {
		fmt.Fprint(stderr, "Usage: punchconnect accounts create --name NAME --email EMAIL [--json]\n")
		if len(args) > 0 && (args[0] == "--help" || args[0] == "-h") {
			return flag.ErrHelp
		}
		return errUsage
	}
	cfg := config.Default()
	fs := newFlagSet("accounts create", "punchconnect accounts create --name NAME --email EMAIL [--json] [flags]", stderr)
	cfg.DatabaseFlags(fs)
	name := fs.String("name", "", "account name, such as your company (required)")
	email := fs.String("email", "", "account e-mail; failure notifications go there (required)")
	asJSON := fs.Bool("json", false, `print {"account_id": …, "api_key": …} instead of text`)
	if err := parse(fs, args[1:], getenv); err != nil {
		return err
	}
	*name = strings.TrimSpace(*name)
	if *name == "" {
		return errors.New("--name is required")
	}
	if err := attendance.ValidateText("name", *name, attendance.MaxNameLength); err != nil {
		return fmt.Errorf("--name: %s", err.(*attendance.Error).Message)
	}
	if err := attendance.ValidateEmail("email", *email); err != nil {
		return fmt.Errorf("--email: %s", err.(*attendance.Error).Message)
	}
	ctx := context.Background()
	s, _, err := openStore(ctx, cfg)
	if err != nil {
		return err
	}
	defer s.Close()
	var a attendance.Account
	var key string
	err = s.InTx(ctx, func(tx *store.Tx) (err error) {
		a, key, err = tx.CreateAccount(ctx, *name, *email)
		return err
	})
	if err != nil {
		return err
	}
	if *asJSON {
		return json.NewEncoder(stdout).Encode(map[string]string{"account_id": a.ID, "api_key": key})
	}
	fmt.Fprintf(stdout, "Created account %s (%s).\nAPI key: %s\nThe key is shown only this once; store it now.\n", a.ID, a.Name, key)
	return nil
}

func migrate(args []string, stdout, stderr io.Writer, getenv func(string) string) error {
	cfg := config.Default()
	fs := newFlagSet("migrate", "punchconnect migrate [flags]", stderr)
	cfg.DatabaseFlags(fs)
	if err := parse(fs, args, getenv); err != nil {
		return err
	}
	s, applied, err := openStore(context.Background(), cfg)
	if err != nil {
		return err
	}
	defer s.Close()
	for _, line := range applied {
		fmt.Fprintln(stdout, line)
	}
	fmt.Fprintf(stdout, "%s schema is up to date (%d migration(s) applied now).\n", s.Dialect(), len(applied))
	return nil
}

func backup(args []string, stdout, stderr io.Writer, getenv func(string) string) error {
	cfg := config.Default()
	fs := newFlagSet("backup", "punchconnect backup --to FILE [flags]", stderr)
	cfg.DatabaseFlags(fs)
	to := fs.String("to", "", "file to write the copy to; it must not exist (required)")
	if err := parse(fs, args, getenv); err != nil {
		return err
	}
	if *to == "" {
		return errors.New("--to is required")
	}
	ctx := context.Background()
	// No migration: the copy is of the store as the running server has it.
	s, err := store.Open(ctx, cfg.DatabaseURL, store.Options{MaxConns: 1})
	if err != nil {
		return err
	}
	defer s.Close()
	began := time.Now()
	if err := s.Backup(ctx, *to); err != nil {
		return err
	}
	st, err := os.Stat(*to)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "Backed up to %s (%d bytes) in %v. Serve it with --database-url sqlite://%s\n",
		*to, st.Size(), time.Since(began).Round(time.Millisecond), *to)
	return nil
}

func devices(args []string, stdout, stderr io.Writer, getenv func(string) string) error {
	if len(args) == 0 || args[0] != "unclaimed" {
		fmt.Fprint(stderr, "Usage: punchconnect devices unclaimed [--json] [flags]\n")
		return errUsage
	}
	cfg := config.Default()
	fs := newFlagSet("devices unclaimed", "punchconnect devices unclaimed [--json] [flags]", stderr)
	cfg.DatabaseFlags(fs)
	asJSON := fs.Bool("json", false, "print JSON lines instead of a table")
	if err := parse(fs, args[1:], getenv); err != nil {
		return err
	}
	ctx := context.Background()
	s, _, err := openStore(ctx, cfg)
	if err != nil {
		return err
	}
	defer s.Close()
	list, err := s.UnclaimedDevices(ctx)
	if err != nil {
		return err
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		for _, u := range list {
			if err := enc.Encode(map[string]any{
				"serial_number": u.SerialNumber, "first_seen_at": u.FirstSeenAt.Format(time.RFC3339), "last_seen_at": u.LastSeenAt.Format(time.RFC3339),
				"last_ip": u.LastIP, "requests": u.Requests, "push_version": u.PushVersion, "device_type": u.DeviceType,
				"held_uploads": u.HeldUploads, "held_bytes": u.HeldBytes,
			}); err != nil {
				return err
			}
		}
		return nil
	}
	if len(list) == 0 {
		fmt.Fprintln(stdout, "No unregistered serial numbers have reached the gateway.")
		return nil
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SERIAL\tFIRST SEEN\tLAST SEEN\tLAST IP\tREQUESTS\tHELD UPLOADS\tHELD BYTES")
	for _, u := range list {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%d\t%d\n", u.SerialNumber, u.FirstSeenAt.Format(time.RFC3339), u.LastSeenAt.Format(time.RFC3339),
			u.LastIP, u.Requests, u.HeldUploads, u.HeldBytes)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(stdout, "\nRegister a serial in its account (POST /v1/devices) and its held uploads are processed there.")
	return nil
}

func simulate(args []string, stdout, stderr io.Writer, getenv func(string) string) error {
	fs := newFlagSet("simulate", "punchconnect simulate --server URL --api-key KEY [flags]", stderr)
	server := fs.String("server", "http://localhost:8080", "PunchConnect base URL the devices push to")
	apiKey := fs.String("api-key", "", "API key of the account the devices and employees are registered in (required)")
	var plan simulator.Plan
	fs.IntVar(&plan.Devices, "devices", 3, "number of devices")
	fs.IntVar(&plan.Employees, "employees", 20, "number of employees, registered in the account when absent")
	fs.Float64Var(&plan.PunchesPerMinute, "rate", 6, "punches per minute per device")
	fs.StringVar(&plan.SerialPrefix, "serial-prefix", "SIM", "serial numbers are this prefix and a 5-digit number")
	fs.StringVar(&plan.Timezone, "timezone", "UTC", "IANA time zone of the devices")
	fs.StringVar(&plan.Site, "site", "Simulated site", "site of the devices")
	fs.DurationVar(&plan.OfflineEvery, "offline-every", 0, "take each device offline this often (0: never); its punches upload as a backlog on return")
	fs.DurationVar(&plan.OfflineFor, "offline-for", time.Minute, "how long an offline period lasts")
	fs.Float64Var(&plan.LostAckRate, "lost-acks", 0, "share of uploads whose acknowledgement is lost, so the device sends them again")
	fs.DurationVar(&plan.DriftPerHour, "drift", 0, "clock drift per hour (e.g. 2s)")
	fs.DurationVar(&plan.ClockOffset, "clock-offset", 0, "initial device clock error (e.g. 90s fast)")
	fs.Float64Var(&plan.State255Share, "state-255", 0, "share of devices with no punch-state key (they send state 255)")
	fs.BoolFunc("essl", "use eSSL-style .aspx paths", func(string) error { plan.Suffix = ".aspx"; return nil })
	duration := fs.Duration("duration", 0, "stop after this long (0: until interrupted)")
	if err := parse(fs, args, getenv); err != nil {
		return err
	}
	if *apiKey == "" {
		return errors.New("--api-key is required (the key serve printed, or one from accounts create)")
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if *duration > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, *duration)
		defer cancel()
	}
	logger := func(format string, a ...any) { fmt.Fprintf(stderr, time.Now().Format("15:04:05 ")+format+"\n", a...) }
	fleet := &simulator.Fleet{Server: strings.TrimRight(*server, "/"), APIKey: *apiKey, Plan: plan, Log: logger}
	if err := fleet.Setup(ctx); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "Simulating %d devices (%s…) with %d employees at %.1f punches/min each against %s. Ctrl-C stops.\n",
		len(fleet.Devices), fleet.Devices[0].Serial, len(fleet.Badges), plan.PunchesPerMinute, fleet.Server)
	done := make(chan struct{})
	go func() {
		fleet.Run(ctx)
		close(done)
	}()
	report := func() {
		t := fleet.Totals()
		fmt.Fprintf(stdout, "%s punches %d, acknowledged %d, resent %d, uploads %d, heartbeats %d, commands %d, failed requests %d\n",
			time.Now().Format("15:04:05"), t.Punches, t.Uploaded, t.Resent, t.Uploads, t.Heartbeats, t.Commands, t.Failures)
	}
	tick := time.NewTicker(10 * time.Second)
	defer tick.Stop()
	for {
		select {
		case <-done:
			report()
			return nil
		case <-tick.C:
			report()
		}
	}
}

func listenCmd(args []string, stdout, stderr io.Writer, getenv func(string) string) error {
	fs := newFlagSet("listen", "punchconnect listen --server URL --api-key KEY --forward-to URL [flags]", stderr)
	server := fs.String("server", "http://localhost:8080", "PunchConnect base URL")
	apiKey := fs.String("api-key", "", "API key of the account whose events are forwarded (required)")
	forwardTo := fs.String("forward-to", "", "local URL that receives each event as a signed POST, such as http://localhost:3000/webhooks/attendance (required)")
	events := fs.String("events", "", "comma-separated event types to forward (default: all)")
	secret := fs.String("secret", "", "signing secret of the forwarded requests (default: a new whsec_… secret, printed at start)")
	if err := parse(fs, args, getenv); err != nil {
		return err
	}
	if *apiKey == "" {
		return errors.New("--api-key is required (the key serve printed, or one from accounts create)")
	}
	if u, err := url.Parse(*forwardTo); *forwardTo == "" || err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return errors.New("--forward-to must be the http(s) URL of your local handler, such as http://localhost:3000/webhooks/attendance")
	}
	if *secret == "" {
		*secret = attendance.NewWebhookSecret()
	}
	var types []string
	for _, t := range strings.Split(*events, ",") {
		if t = strings.TrimSpace(t); t != "" && t != "*" {
			types = append(types, t)
		}
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	fmt.Fprintf(stdout, "Ready. Forwarding events to %s, signed with the secret\n\n  %s\n\n"+
		"Verify X-PunchConnect-Signature (or the Standard Webhooks webhook-signature) with it. Ctrl-C stops.\n", *forwardTo, *secret)
	l := &listen.Listener{
		Server: *server, APIKey: *apiKey, ForwardTo: *forwardTo, Types: types, Secret: *secret,
		UserAgent: "PunchConnect-Webhooks/" + app.VersionString() + " (listen)", Out: stdout,
	}
	return l.Run(ctx)
}
