package delivery

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/punchconnect/punchconnect/internal/attendance"
	"github.com/punchconnect/punchconnect/internal/mail"
	"github.com/punchconnect/punchconnect/internal/store"
)

// mailedEventIDs bounds the event IDs an incident e-mail lists.
const mailedEventIDs = 100

// incidentMail tells the account that deliveries to an endpoint failed for
// good. It is sent once per incident: until the endpoint takes an event again.
func incidentMail(a attendance.Account, w *attendance.Webhook, eventIDs []string, lastErr, publicURL string) attendance.Notification {
	var b strings.Builder
	fmt.Fprintf(&b, "PunchConnect could not deliver %d event(s) to your webhook endpoint, and has stopped retrying them.\n\n", len(eventIDs))
	fmt.Fprintf(&b, "Endpoint:   %s\nWebhook:    %s\n", w.URL, w.ID)
	if !w.FailingSince.IsZero() {
		fmt.Fprintf(&b, "Failing since: %s\n", w.FailingSince.UTC().Format(time.RFC3339))
	}
	if lastErr != "" {
		fmt.Fprintf(&b, "Last error: %s\n", lastErr)
	}
	b.WriteString("\nEvents that failed:\n")
	for i, id := range eventIDs {
		if i == mailedEventIDs {
			fmt.Fprintf(&b, "  … and %d more\n", len(eventIDs)-mailedEventIDs)
			break
		}
		fmt.Fprintf(&b, "  %s\n", id)
	}
	fmt.Fprintf(&b, `
Events that fail later in this incident are not e-mailed again; list them all with
  GET %[1]s/v1/webhooks/%[2]s/deliveries?status=failed

Once your endpoint answers 2xx again, send them again, in order, with
  POST %[1]s/v1/webhooks/%[2]s/retry

Newer events are still queued for this endpoint and go out as soon as it answers.
`, strings.TrimRight(publicURL, "/"), w.ID)
	return attendance.Notification{
		AccountID: a.ID, Recipient: a.Email,
		Subject: fmt.Sprintf("[PunchConnect] Webhook deliveries failed: %s", w.URL),
		Body:    b.String(),
	}
}

// disabledMail tells the account that an endpoint was disabled (it answered
// 410 Gone).
func disabledMail(a attendance.Account, w *attendance.Webhook, publicURL string) attendance.Notification {
	body := fmt.Sprintf(`PunchConnect disabled your webhook endpoint, and sends it no more events.

Endpoint: %[3]s
Webhook:  %[2]s
Reason:   %[4]s

Its pending deliveries are kept. To deliver to it again, enable it with
  PATCH %[1]s/v1/webhooks/%[2]s {"enabled": true}
and, for the events recorded while it was disabled,
  POST %[1]s/v1/webhooks/%[2]s/replay {"start": "…", "end": "…"}
`, strings.TrimRight(publicURL, "/"), w.ID, w.URL, w.DisabledReason)
	return attendance.Notification{
		AccountID: a.ID, Recipient: a.Email,
		Subject: fmt.Sprintf("[PunchConnect] Webhook disabled: %s", w.URL),
		Body:    body,
	}
}

// notified wakes the notifier after e-mails were queued.
func (d *Dispatcher) notified() {
	if d.cfg.Notify != nil {
		d.cfg.Notify()
	}
}

// Notifier sends the e-mail outbox.
type Notifier struct {
	Store  *store.Store
	Mailer mail.Sender // nil: no SMTP server configured
	Logger *slog.Logger
	Now    func() time.Time
	Poll   time.Duration
	kick   chan struct{}
}

// notifyAttempts is how many times an e-mail is tried before it is given up.
const notifyAttempts = 10

// NewNotifier returns a notifier; mailer may be nil.
func NewNotifier(s *store.Store, mailer mail.Sender, logger *slog.Logger, now func() time.Time) *Notifier {
	if logger == nil {
		logger = slog.Default()
	}
	if now == nil {
		now = time.Now
	}
	return &Notifier{Store: s, Mailer: mailer, Logger: logger.With("component", "notifier"), Now: now, Poll: 5 * time.Second, kick: make(chan struct{}, 1)}
}

// Kick makes the notifier look at the outbox now.
func (n *Notifier) Kick() { signal(n.kick) }

// Run sends due e-mails until ctx ends.
func (n *Notifier) Run(ctx context.Context) {
	t := time.NewTicker(n.Poll)
	defer t.Stop()
	for {
		for ctx.Err() == nil {
			sent, err := n.sendOne(ctx)
			if err != nil {
				if ctx.Err() == nil {
					n.Logger.Warn("e-mail outbox", "err", err)
				}
				break
			}
			if !sent {
				break
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-n.kick:
		case <-t.C:
		}
	}
}

// sendOne sends the oldest due e-mail, if any.
func (n *Notifier) sendOne(ctx context.Context) (bool, error) {
	msg, ok, err := n.Store.ClaimNotification(ctx, 2*time.Minute)
	if err != nil || !ok {
		return false, err
	}
	var sendErr error
	next := time.Time{}
	switch {
	case n.Mailer == nil:
		sendErr = errors.New("not sent: no SMTP server is configured (start the server with --smtp-url and --smtp-from)")
	case msg.Recipient == "":
		sendErr = errors.New("not sent: the account has no e-mail address")
	default:
		sctx, cancel := context.WithTimeout(ctx, time.Minute)
		sendErr = n.Mailer.Send(sctx, mail.Message{To: msg.Recipient, Subject: msg.Subject, Body: msg.Body})
		cancel()
		if sendErr != nil && msg.Attempts+1 < notifyAttempts {
			next = n.Now().Add(min(time.Duration(1<<msg.Attempts)*time.Minute, time.Hour))
		}
	}
	if sendErr != nil {
		n.Logger.Warn("e-mail not sent", "to", msg.Recipient, "subject", msg.Subject, "err", sendErr, "retry_at", next)
	} else {
		n.Logger.Info("e-mail sent", "to", msg.Recipient, "subject", msg.Subject)
	}
	return true, n.Store.FinishNotification(context.WithoutCancel(ctx), msg, sendErr, next)
}
