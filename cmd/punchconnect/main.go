// Command punchconnect is the PunchConnect server and its tools.
//
//	punchconnect serve                         run the API and the device gateway
//	punchconnect accounts create --name --email   make an account and print its API key
//	punchconnect migrate                       bring the database schema up to date
//	punchconnect version                       print the version
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/punchconnect/punchconnect/internal/app"
	"github.com/punchconnect/punchconnect/internal/attendance"
	"github.com/punchconnect/punchconnect/internal/config"
	"github.com/punchconnect/punchconnect/internal/store"
)

const usage = `PunchConnect: biometric attendance in, clean signed webhooks out.

Usage:
  punchconnect serve [flags]              run the API (/v1) and the device gateway (/iclock)
  punchconnect accounts create --name NAME --email EMAIL [--json]
                                          make an account and print its API key (shown once)
  punchconnect migrate [flags]            bring the database schema up to date and exit
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
