package delivery

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/punchconnect/punchconnect/internal/attendance"
	"github.com/punchconnect/punchconnect/internal/periodic"
	"github.com/punchconnect/punchconnect/internal/store"
)

// Config configures a Dispatcher.
type Config struct {
	Store  *store.Store
	Sender *Sender
	Logger *slog.Logger
	Now    func() time.Time
	// Slots are the retry schedule's offsets, the first attempt's 0
	// included (ParseSchedule).
	Slots []time.Duration
	// PublicURL is the base of links in e-mails.
	PublicURL string
	// Owner names this node in endpoint leases (default: host, pid and a
	// random suffix).
	Owner string
	// Poll is how often the dispatcher looks for due work that no in-process
	// signal announced: slots coming due, other nodes' events (default 250ms).
	Poll time.Duration
	// Linger is how long a worker with nothing to send keeps its endpoint
	// before letting it go (default 2s): bursts need no new claim.
	Linger time.Duration
	// Lease is how long a claim on an endpoint lasts without renewal
	// (default 15s; renewed every third of it): how long the endpoints of a
	// node that died wait before another node takes them over.
	Lease time.Duration
	// MaxWorkers bounds the endpoints this node sends to at once (default 1000).
	MaxWorkers int
	// BatchSize bounds the deliveries read, sent and committed per step
	// (default 100): what a crash may send twice.
	BatchSize int
	// Notify is called when e-mails were queued (to wake the notifier).
	Notify func()
}

// Dispatcher works the delivery outbox: it claims endpoints that have
// deliveries due, and runs one worker per claimed endpoint that sends its
// deliveries in event order.
type Dispatcher struct {
	cfg Config
	log *slog.Logger

	mu      sync.Mutex
	workers map[string]chan struct{} // endpoint ID → its worker's wake-up
	kick    chan struct{}
	done    chan struct{}
	replays chan struct{}
	wg      sync.WaitGroup
}

// NewDispatcher checks cfg and fills its defaults.
func NewDispatcher(cfg Config) (*Dispatcher, error) {
	if cfg.Store == nil || cfg.Sender == nil {
		return nil, errors.New("delivery: Store and Sender are required")
	}
	if len(cfg.Slots) < 1 || cfg.Slots[0] != 0 {
		return nil, errors.New("delivery: Slots must start with the first attempt's 0")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Owner == "" {
		host, _ := os.Hostname()
		var b [4]byte
		_, _ = rand.Read(b[:])
		cfg.Owner = fmt.Sprintf("%s/%d/%s", host, os.Getpid(), hex.EncodeToString(b[:]))
	}
	if cfg.Poll <= 0 {
		cfg.Poll = 250 * time.Millisecond
	}
	if cfg.Linger <= 0 {
		cfg.Linger = 2 * time.Second
	}
	if cfg.Lease <= 0 {
		cfg.Lease = 15 * time.Second
	}
	if cfg.MaxWorkers <= 0 {
		cfg.MaxWorkers = 1000
	}
	if cfg.BatchSize <= 0 {
		cfg.BatchSize = 100
	}
	return &Dispatcher{
		cfg: cfg, log: cfg.Logger.With("component", "delivery"),
		workers: map[string]chan struct{}{}, kick: make(chan struct{}, 1), done: make(chan struct{}, 1),
		replays: make(chan struct{}, 1),
	}, nil
}

// Kick makes the dispatcher look for due endpoints now (after an API call
// made one due, such as a retry).
func (d *Dispatcher) Kick() { signal(d.kick) }

func signal(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

// Run dispatches until ctx ends, then waits for its workers, which stop
// after their request in flight and commit what they sent.
func (d *Dispatcher) Run(ctx context.Context) {
	if d.cfg.Store.Dialect() == store.SQLite {
		// One node sends from a SQLite store: leases of a previous process
		// (killed, say) are stale, and waiting for them would only delay.
		if err := d.cfg.Store.ReleaseAllLeases(ctx); err != nil {
			d.log.Warn("release stale leases", "err", err)
		}
	}
	t := time.NewTicker(d.cfg.Poll)
	defer t.Stop()
	repair := time.NewTicker(time.Minute)
	defer repair.Stop()
	claim := true
	for {
		if claim {
			d.claim(ctx)
		}
		claim = true
		select {
		case <-ctx.Done():
			d.wg.Wait()
			return
		case <-d.cfg.Store.DeliveriesQueued():
			d.wakeWorkers()
		case <-d.cfg.Store.OthersQueued():
			// Another node queued them: it claims the endpoints nobody
			// holds; this node's workers look at theirs.
			d.wakeWorkers()
			claim = false
		case <-d.kick:
			d.wakeWorkers()
		case <-d.done:
		case <-t.C:
		case <-repair.C:
			if n, err := d.cfg.Store.RepairDue(ctx); err != nil {
				d.log.Warn("repair due endpoints", "err", err)
			} else if n > 0 {
				d.log.Warn("endpoints with pending deliveries were not due; made them due", "count", n)
			}
		}
	}
}

func (d *Dispatcher) wakeWorkers() {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, wake := range d.workers {
		signal(wake)
	}
}

// claim leases the due endpoints no worker holds and starts their workers.
func (d *Dispatcher) claim(ctx context.Context) {
	if ctx.Err() != nil {
		return
	}
	next, err := d.cfg.Store.NextWebhookDue(ctx)
	if err != nil {
		if ctx.Err() == nil {
			d.log.Warn("look for due endpoints", "err", err)
		}
		return
	}
	if next.IsZero() || next.After(d.cfg.Now()) {
		return
	}
	d.mu.Lock()
	free := d.cfg.MaxWorkers - len(d.workers)
	d.mu.Unlock()
	if free <= 0 {
		return
	}
	hooks, err := d.cfg.Store.ClaimDueWebhooks(ctx, d.cfg.Owner, d.cfg.Lease, free)
	if err != nil {
		if ctx.Err() == nil {
			d.log.Warn("claim due endpoints", "err", err)
		}
		return
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, w := range hooks {
		if wake, ok := d.workers[w.ID]; ok {
			signal(wake) // ours already; its lease had run out on a jumping clock
			continue
		}
		wake := make(chan struct{}, 1)
		d.workers[w.ID] = wake
		d.wg.Go(func() {
			defer func() {
				d.mu.Lock()
				delete(d.workers, w.ID)
				d.mu.Unlock()
				signal(d.done)
			}()
			d.work(ctx, w, wake)
		})
	}
}

// errStop ends a worker: its endpoint was deleted or disabled.
var errStop = errors.New("endpoint stopped")

// work sends an endpoint's deliveries while it holds the endpoint's lease.
func (d *Dispatcher) work(ctx context.Context, w attendance.Webhook, wake <-chan struct{}) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	renewed := make(chan struct{})
	go func() {
		defer close(renewed)
		d.renew(ctx, w.ID, cancel)
	}()
	defer func() { <-renewed }()
	defer cancel()

	e := &endpoint{d: d, id: w.ID}
	settle := func() {
		if err := e.settle(); err != nil && !errors.Is(err, store.ErrLeaseLost) {
			d.log.Error("delivery commit", "webhook_id", w.ID, "err", err)
		}
	}
	defer settle()
	// letGo releases the endpoint once its last commit has landed.
	letGo := func() {
		settle()
		d.release(w.ID)
	}
	idle := time.Now()
	for {
		worked, err := e.step(ctx)
		switch {
		case errors.Is(err, errStop):
			letGo()
			return
		case ctx.Err() != nil || errors.Is(err, store.ErrLeaseLost):
			if ctx.Err() != nil && !errors.Is(err, store.ErrLeaseLost) {
				letGo()
			}
			return
		case err != nil:
			d.log.Error("delivery step", "webhook_id", w.ID, "err", err)
			select {
			case <-ctx.Done():
			case <-time.After(time.Second):
			}
			continue
		case worked:
			idle = time.Now()
			continue
		}
		if time.Since(idle) >= d.cfg.Linger {
			letGo()
			return
		}
		select {
		case <-ctx.Done():
		case <-wake:
		case <-time.After(d.cfg.Poll):
		}
	}
}

// renew keeps the worker's lease alive; losing it stops the worker.
func (d *Dispatcher) renew(ctx context.Context, webhookID string, lost context.CancelFunc) {
	periodic.Every(ctx, d.cfg.Lease/3, func() bool {
		ok, err := d.cfg.Store.RenewLease(ctx, webhookID, d.cfg.Owner, d.cfg.Now().Add(d.cfg.Lease))
		if err != nil {
			if ctx.Err() == nil {
				d.log.Warn("renew endpoint lease", "webhook_id", webhookID, "err", err)
			}
			return true
		}
		if !ok {
			d.log.Warn("lost the lease of an endpoint to another node", "webhook_id", webhookID)
			lost()
			return false
		}
		return true
	})
}

// release lets go of an endpoint, recording when it is next due.
func (d *Dispatcher) release(webhookID string) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err := d.cfg.Store.InTx(ctx, func(tx *store.Tx) error {
		w, ok, err := tx.ReadWebhook(ctx, webhookID)
		if err != nil || !ok {
			return err
		}
		return tx.SaveWebhookState(ctx, &w, d.cfg.Owner, true)
	})
	if err != nil && !errors.Is(err, store.ErrLeaseLost) {
		d.log.Warn("release endpoint", "webhook_id", webhookID, "err", err)
	}
}

// KickReplays makes the replay runner look for work now.
func (d *Dispatcher) KickReplays() { signal(d.replays) }

// RunReplays advances replay jobs until ctx ends: each step enqueues the
// next events of a job as deliveries, which the dispatcher then sends with
// the normal retry policy.
func (d *Dispatcher) RunReplays(ctx context.Context) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		for ctx.Err() == nil {
			r, did, err := d.cfg.Store.AdvanceReplay(ctx)
			if err != nil {
				if ctx.Err() == nil {
					d.log.Warn("replay", "err", err)
				}
				break
			}
			if !did {
				break
			}
			if r.Status == attendance.ReplayCompleted {
				d.log.Info("replay completed", "replay_id", r.ID, "webhook_id", r.WebhookID, "enqueued", r.Enqueued)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-d.replays:
		case <-t.C:
		}
	}
}
