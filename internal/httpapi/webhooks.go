package httpapi

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/url"
	"time"

	"github.com/punchconnect/punchconnect/internal/attendance"
	"github.com/punchconnect/punchconnect/internal/delivery"
	"github.com/punchconnect/punchconnect/internal/event"
	"github.com/punchconnect/punchconnect/internal/id"
	"github.com/punchconnect/punchconnect/internal/store"
	"github.com/punchconnect/punchconnect/internal/webhook"
)

var webhookList = listSpec{sorts: store.WebhookSorts}

var deliveryList = listSpec{sorts: store.DeliverySorts, params: []string{"status", "event_id"}}

// webhookReadOnly are the webhook fields the server maintains.
var webhookReadOnly = []string{"id", "object", "disabled_reason", "previous_secret_expires_at", "delivery", "created_at", "updated_at"}

// Limits of secret rotation.
const (
	defaultGraceHours = 24
	maxGraceHours     = 7 * 24
	// retryWindow is how far back POST /retry re-queues failed deliveries by
	// default: the schedule's 72 hours.
	retryWindow = 72 * time.Hour
	// maxReplayRange bounds one replay's time range.
	maxReplayRange = 366 * 24 * time.Hour
)

// decodeWebhook reads a webhook create or update body.
func decodeWebhook(body []byte, create bool) (attendance.WebhookInput, error) {
	var in attendance.WebhookInput
	o, err := parseBody(body)
	if err != nil {
		return in, err
	}
	o.str("url", &in.URL)
	o.stringList("events", &in.Events)
	o.str("description", &in.Description)
	o.boolean("enabled", &in.Enabled)
	if create {
		o.str("secret", &in.Secret)
	} else if _, ok := o.take("secret"); ok {
		o.fail(attendance.Errorf(attendance.CodeReadOnlyParameter, "secret",
			"A webhook's secret changes only through POST /v1/webhooks/{id}/rotate_secret, which keeps the old one signing for a grace period."))
	}
	o.readOnly(webhookReadOnly...)
	if err := o.done(); err != nil {
		return in, err
	}
	return in, in.Validate(create)
}

// checkWebhookURL refuses URLs whose host is, or resolves to, an address
// webhooks may not reach (unless the server allows private addresses).
func (s *Server) checkWebhookURL(ctx context.Context, raw string) error {
	if s.allowPrivateWebhooks {
		return nil
	}
	u, err := url.Parse(raw)
	if err != nil {
		return attendance.Errorf(attendance.CodeInvalidWebhookURL, "url", "%q is not a URL.", raw)
	}
	_, err = webhook.CheckHost(ctx, u.Hostname())
	var dnsErr *net.DNSError
	switch {
	case err == nil:
		return nil
	case errors.Is(err, webhook.ErrPrivateAddress):
		return attendance.Errorf(attendance.CodeWebhookURLNotAllowed, "url",
			"%s is a loopback, private, link-local or metadata address (%v), which webhooks may not reach. For local development, start the server with --allow-private-webhook-urls, or use `punchconnect listen --forward-to`.",
			u.Hostname(), err)
	case errors.As(err, &dnsErr):
		return attendance.Errorf(attendance.CodeInvalidWebhookURL, "url", "The host %q of the URL does not resolve: %s.", u.Hostname(), dnsErr.Err)
	default:
		return attendance.Errorf(attendance.CodeInvalidWebhookURL, "url", "The host %q of the URL could not be checked: %v.", u.Hostname(), err)
	}
}

func (s *Server) createWebhook(c *call) error {
	in, err := decodeWebhook(c.body, true)
	if err != nil {
		return err
	}
	if err := s.checkWebhookURL(c.ctx(), in.URL.Value); err != nil {
		return err
	}
	secret := in.Secret.Value
	if !in.Secret.Set {
		secret = attendance.NewWebhookSecret()
	}
	return s.mutate(c, http.StatusCreated, func(tx *store.Tx) (any, error) {
		w, err := tx.CreateWebhook(c.ctx(), c.acct.ID, in, secret)
		if err != nil {
			return nil, err
		}
		return one[webhookView]{viewWebhook(w, store.WebhookStats{}, true)}, nil
	})
}

// webhookOfPath reads the webhook of the path.
func (s *Server) webhookOfPath(c *call) (attendance.Webhook, error) {
	whID, err := pathID(c, id.Webhook, "webhook")
	if err != nil {
		return attendance.Webhook{}, err
	}
	return s.store.Webhook(c.ctx(), c.acct.ID, whID)
}

func (s *Server) showWebhook(c *call, withSecret bool) error {
	w, err := s.webhookOfPath(c)
	if err != nil {
		return err
	}
	st, err := s.store.WebhookStats(c.ctx(), w.ID)
	if err != nil {
		return err
	}
	return c.json(http.StatusOK, one[webhookView]{viewWebhook(w, st, withSecret)})
}

func (s *Server) getWebhook(c *call) error { return s.showWebhook(c, false) }

// revealSecret shows the webhook with its secret: the explicit reveal.
func (s *Server) revealSecret(c *call) error { return s.showWebhook(c, true) }

func (s *Server) listWebhooks(c *call) error {
	lr, err := parseList(c.r.URL.Query(), webhookList)
	if err != nil {
		return err
	}
	page, err := s.store.ListWebhooks(c.ctx(), c.acct.ID, lr.params)
	if err != nil {
		return err
	}
	stats := make(map[string]store.WebhookStats, len(page.Items))
	for _, w := range page.Items {
		if stats[w.ID], err = s.store.WebhookStats(c.ctx(), w.ID); err != nil {
			return err
		}
	}
	return c.json(http.StatusOK, listOf(lr, page, func(w attendance.Webhook) webhookView { return viewWebhook(w, stats[w.ID], false) }))
}

func (s *Server) updateWebhook(c *call) error {
	whID, err := pathID(c, id.Webhook, "webhook")
	if err != nil {
		return err
	}
	in, err := decodeWebhook(c.body, false)
	if err != nil {
		return err
	}
	if in.URL.Set {
		if err := s.checkWebhookURL(c.ctx(), in.URL.Value); err != nil {
			return err
		}
	}
	return s.mutateAndKick(c, http.StatusOK, func(tx *store.Tx) (any, error) {
		w, err := tx.UpdateWebhook(c.ctx(), c.acct.ID, whID, in)
		if err != nil {
			return nil, err
		}
		st, err := tx.WebhookStats(c.ctx(), w.ID)
		return one[webhookView]{viewWebhook(w, st, false)}, err
	})
}

func (s *Server) deleteWebhook(c *call) error {
	whID, err := pathID(c, id.Webhook, "webhook")
	if err != nil {
		return err
	}
	return s.mutate(c, http.StatusOK, func(tx *store.Tx) (any, error) {
		return one[deletedView]{deletedView{ID: whID, Object: "webhook", Deleted: true}}, tx.DeleteWebhook(c.ctx(), c.acct.ID, whID)
	})
}

func (s *Server) rotateSecret(c *call) error {
	whID, o, err := actionOf(c, id.Webhook, "webhook")
	if err != nil {
		return err
	}
	grace := attendance.Some(defaultGraceHours)
	var secret attendance.Field[string]
	o.integer("grace_period_hours", &grace)
	o.str("secret", &secret)
	if err := o.done(); err != nil {
		return err
	}
	if grace.Value < 0 || grace.Value > maxGraceHours {
		return invalidParam("grace_period_hours", "grace_period_hours must be from 0 (the old secret stops at once) to %d; got %d.", maxGraceHours, grace.Value)
	}
	next := attendance.NewWebhookSecret()
	if secret.Set {
		in := attendance.WebhookInput{Secret: secret}
		if err := in.Validate(false); err != nil {
			return err
		}
		next = secret.Value
	}
	return s.mutate(c, http.StatusOK, func(tx *store.Tx) (any, error) {
		w, err := tx.RotateSecret(c.ctx(), c.acct.ID, whID, next, time.Duration(grace.Value)*time.Hour)
		if err != nil {
			return nil, err
		}
		st, err := tx.WebhookStats(c.ctx(), w.ID)
		return one[webhookView]{viewWebhook(w, st, true)}, err
	})
}

// testWebhook sends a signed webhook.test event now and reports what the
// endpoint answered. It is not stored and not retried.
func (s *Server) testWebhook(c *call) error {
	w, err := s.webhookOfPath(c)
	if err != nil {
		return err
	}
	o, err := parseBody(c.body)
	if err != nil {
		return err
	}
	if err := o.done(); err != nil {
		return err
	}
	ev := event.Test(w, s.now())
	res := s.sender.Send(c.ctx(), &w, ev.ID, ev.Payload, 1)
	return c.json(http.StatusOK, one[testView]{viewTest(w, ev.ID, res)})
}

// retryWebhook probes the endpoint at once and re-queues its failed
// deliveries (PRODUCT.md §8).
func (s *Server) retryWebhook(c *call) error {
	whID, o, err := actionOf(c, id.Webhook, "webhook")
	if err != nil {
		return err
	}
	var sinceRaw attendance.Field[string]
	o.str("since", &sinceRaw)
	if err := o.done(); err != nil {
		return err
	}
	since := s.now().Add(-retryWindow)
	if sinceRaw.Set {
		if since, err = time.Parse(time.RFC3339Nano, sinceRaw.Value); err != nil {
			return invalidParam("since", "since %q is not an RFC 3339 instant such as 2026-03-28T09:00:00Z.", sinceRaw.Value)
		}
	}
	return s.mutateAndKick(c, http.StatusOK, func(tx *store.Tx) (any, error) {
		n, err := tx.RequeueFailed(c.ctx(), c.acct.ID, whID, since)
		return one[retryView]{retryView{Object: "webhook_retry", WebhookID: whID, Requeued: n, Since: formatTime(since)}}, err
	})
}

// replayWebhook starts a background job that re-sends the events recorded
// between start and end (PRODUCT.md §5, §8).
func (s *Server) replayWebhook(c *call) error {
	whID, o, err := actionOf(c, id.Webhook, "webhook")
	if err != nil {
		return err
	}
	var startRaw, endRaw attendance.Field[string]
	var types attendance.Field[[]string]
	o.str("start", &startRaw)
	o.str("end", &endRaw)
	o.stringList("event_types", &types)
	if err := o.done(); err != nil {
		return err
	}
	r := attendance.Replay{AccountID: c.acct.ID, WebhookID: whID}
	for _, b := range []struct {
		name string
		raw  attendance.Field[string]
		to   *time.Time
	}{{"start", startRaw, &r.Start}, {"end", endRaw, &r.End}} {
		if !b.raw.Set {
			return attendance.Errorf(attendance.CodeMissingParameter, b.name, "%s is required: an RFC 3339 instant, matched against when events were recorded.", b.name)
		}
		if *b.to, err = time.Parse(time.RFC3339Nano, b.raw.Value); err != nil {
			return invalidParam(b.name, "%s %q is not an RFC 3339 instant such as 2026-03-28T09:00:00Z.", b.name, b.raw.Value)
		}
	}
	if r.End.Before(r.Start) {
		return invalidParam("end", "end is before start.")
	}
	if r.End.Sub(r.Start) > maxReplayRange {
		return invalidParam("end", "One replay covers at most 366 days; split longer ranges into several replays.")
	}
	if types.Set {
		check := attendance.WebhookInput{Events: types}
		if err := check.Validate(false); err != nil {
			e, _ := attendance.AsError(err)
			return attendance.Errorf(e.Code, "event_types", "%s", e.Message)
		}
		for _, t := range types.Value {
			if t == "*" {
				types.Value = nil // all types
				break
			}
		}
		r.EventTypes = types.Value
	}
	err = s.mutate(c, http.StatusAccepted, func(tx *store.Tx) (any, error) {
		if _, err := tx.Webhook(c.ctx(), c.acct.ID, whID); err != nil {
			return nil, err
		}
		if err := tx.CreateReplay(c.ctx(), &r); err != nil {
			return nil, err
		}
		return one[replayView]{viewReplay(r)}, nil
	})
	if s.dispatcher != nil {
		s.dispatcher.KickReplays()
	}
	return err
}

func (s *Server) getReplay(c *call) error {
	whID, err := pathID(c, id.Webhook, "webhook")
	if err != nil {
		return err
	}
	rID := c.r.PathValue("replay_id")
	if !id.Valid(id.Replay, rID) {
		return attendance.NotFound("replay", rID)
	}
	r, err := s.store.Replay(c.ctx(), c.acct.ID, whID, rID)
	if err != nil {
		return err
	}
	return c.json(http.StatusOK, one[replayView]{viewReplay(r)})
}

// deliveryQuery reads the filters of a delivery list.
func deliveryQuery(c *call) (store.DeliveryList, error) {
	q := c.r.URL.Query()
	dl := store.DeliveryList{Status: q.Get("status"), EventID: q.Get("event_id")}
	switch dl.Status {
	case "", attendance.DeliveryPending, attendance.DeliveryDelivered, attendance.DeliveryFailed:
	default:
		return dl, invalidParam("status", "status must be pending, delivered or failed; got %q.", dl.Status)
	}
	return dl, nil
}

func (s *Server) listWebhookDeliveries(c *call) error {
	w, err := s.webhookOfPath(c)
	if err != nil {
		return err
	}
	return s.listDeliveries(c, func(dl *store.DeliveryList) error {
		dl.WebhookID = w.ID
		return nil
	})
}

// listDeliveries answers a list of deliveries, with the query's filters,
// narrowed by scope (to one event or one webhook).
func (s *Server) listDeliveries(c *call, scope func(*store.DeliveryList) error) error {
	lr, err := parseList(c.r.URL.Query(), deliveryList)
	if err != nil {
		return err
	}
	dl, err := deliveryQuery(c)
	if err != nil {
		return err
	}
	if err := scope(&dl); err != nil {
		return err
	}
	page, err := s.store.ListDeliveries(c.ctx(), c.acct.ID, dl, lr.params)
	if err != nil {
		return err
	}
	return c.json(http.StatusOK, listOf(lr, page, viewDelivery))
}

// kickDeliveries wakes the dispatcher after a change that may make an
// endpoint due.
func (s *Server) kickDeliveries() {
	if s.dispatcher != nil {
		s.dispatcher.Kick()
	}
}

// mutateAndKick is mutate for changes that may make an endpoint due: the
// dispatcher is woken once they are committed.
func (s *Server) mutateAndKick(c *call, status int, work func(tx *store.Tx) (any, error)) error {
	err := s.mutate(c, status, work)
	s.kickDeliveries()
	return err
}

// actionOf reads the {id} of an action route (of kind p) and its JSON body.
func actionOf(c *call, p id.Prefix, kind string) (string, *object, error) {
	pid, err := pathID(c, p, kind)
	if err != nil {
		return "", nil, err
	}
	o, err := parseBody(c.body)
	return pid, o, err
}

// Deliverer is what the API needs of the delivery engine.
type Deliverer interface {
	Kick()
	KickReplays()
}

var _ Deliverer = (*delivery.Dispatcher)(nil)
