package delivery

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/punchconnect/punchconnect/internal/attendance"
	"github.com/punchconnect/punchconnect/internal/store"
)

// isolatedPerStep bounds the isolated deliveries retried per step.
const isolatedPerStep = 50

// endpoint is a worker's view of the endpoint it holds.
type endpoint struct {
	d  *Dispatcher
	id string

	// While the queue flows, a batch's outcome is committed in the
	// background as the next batch is sent: pending carries the result of
	// that commit, after the queue position of its last delivery, and w the
	// endpoint's state as the dispatcher left it (the store's copy lags).
	pending chan error
	after   attendance.Delivery
	w       attendance.Webhook

	// next carries the reads of the step after a full batch, made while
	// the batch is being sent (prefetch): on PostgreSQL each is a round
	// trip that would otherwise stand between two batches.
	next chan reads
}

// reads is what a step reads before it sends: the endpoint, its isolated
// deliveries due, and the batch of its queue after a delivery.
type reads struct {
	after    string // the ID of the delivery the queue was read after
	w        attendance.Webhook
	ok       bool
	isolated []attendance.Delivery
	queue    []attendance.Delivery
	err      error
}

// prefetch reads, in the background, what the next step needs if the
// batch ending with after is delivered.
func (e *endpoint) prefetch(ctx context.Context, after attendance.Delivery) {
	st := e.d.cfg.Store
	ch := make(chan reads, 1)
	e.next = ch
	go func() {
		r := reads{after: after.ID}
		r.w, r.ok, r.err = st.ReadWebhook(ctx, e.id)
		if r.err == nil {
			r.isolated, r.err = st.DueIsolated(ctx, e.id, e.d.cfg.Now(), isolatedPerStep)
		}
		if r.err == nil {
			r.queue, r.err = st.QueueAfter(ctx, e.id, after.EventSeq, after.Seq, e.d.cfg.BatchSize)
		}
		ch <- r
	}()
}

// prefetched returns the reads prefetch made for this step, if the step
// before delivered its whole batch (its commit is in flight) and they are
// after it; nil: read afresh.
func (e *endpoint) prefetched() *reads {
	if e.next == nil {
		return nil
	}
	r := <-e.next
	e.next = nil
	if r.err != nil || e.pending == nil || r.after != e.after.ID {
		return nil
	}
	return &r
}

// outcome is what one step did, committed in one transaction.
type outcome struct {
	now      time.Time
	updated  []*attendance.Delivery
	attempts []attendance.Attempt
	failed   []string // event IDs whose deliveries failed for good
	// consume: the queue's head failed, which stands for the attempts its
	// due deliveries were owed; consumeErr is what they record.
	consume    bool
	consumeErr string
	disabled   bool
	lastErr    string
	// clean: every attempt delivered, none isolated; the queue may have more.
	clean bool
}

// settle waits for the commit in flight, if any.
func (e *endpoint) settle() error {
	if e.pending == nil {
		return nil
	}
	err := <-e.pending
	e.pending = nil
	return err
}

// step sends what the endpoint has due, once: a probe when it is failing,
// its isolated deliveries whose slot has come, and its queue in event order
// while it answers. It commits what it sent — in the background while the
// queue flows — and reports whether it did anything.
func (e *endpoint) step(ctx context.Context) (bool, error) {
	st := e.d.cfg.Store
	pre := e.prefetched()
	var w attendance.Webhook
	var ok bool
	var err error
	if pre != nil {
		w, ok = pre.w, pre.ok
	} else if w, ok, err = st.ReadWebhook(ctx, e.id); err != nil {
		return false, errors.Join(err, e.settle())
	}
	if e.pending != nil {
		// The dispatcher's own fields are ahead of the store's.
		w.State, w.FailingSince, w.NotBefore, w.IncidentMailed, w.LastDeliveredAt =
			e.w.State, e.w.FailingSince, e.w.NotBefore, e.w.IncidentMailed, e.w.LastDeliveredAt
	}
	if !ok || !w.Enabled {
		return false, errors.Join(errStop, e.settle())
	}
	now := e.d.cfg.Now()
	if now.Before(w.NotBefore) {
		return false, e.settle() // Retry-After
	}
	out := &outcome{now: now}

	var isolated []attendance.Delivery
	if pre != nil {
		isolated = pre.isolated
	} else if isolated, err = st.DueIsolated(ctx, w.ID, now, isolatedPerStep); err != nil {
		return false, errors.Join(err, e.settle())
	}
	for i := range isolated {
		if ctx.Err() != nil || !w.Enabled {
			break
		}
		e.attempt(ctx, &w, &isolated[i], out)
	}

	probe := w.State == attendance.WebhookHealthy
	if !probe {
		if err := e.settle(); err != nil {
			return false, err
		}
		if probe, err = st.QueueDue(ctx, w.ID, now); err != nil {
			return false, err
		}
	}
	var queue []attendance.Delivery
	if probe && w.Enabled && ctx.Err() == nil {
		switch {
		case pre != nil && e.pending != nil:
			queue = pre.queue
		case e.pending != nil:
			queue, err = st.QueueAfter(ctx, w.ID, e.after.EventSeq, e.after.Seq, e.d.cfg.BatchSize)
		default:
			queue, err = st.QueueHead(ctx, w.ID, e.d.cfg.BatchSize)
		}
		if err != nil {
			return false, errors.Join(err, e.settle())
		}
		if len(queue) == e.d.cfg.BatchSize && len(isolated) == 0 {
			// A full batch that may flow: the next step's reads are
			// made while it is sent.
			e.prefetch(ctx, queue[len(queue)-1])
		}
		e.drain(ctx, &w, queue, out)
		out.clean = len(isolated) == 0 && len(queue) == e.d.cfg.BatchSize && !out.consume && !out.disabled &&
			w.State == attendance.WebhookHealthy && len(out.attempts) == len(queue)
		for _, d := range queue {
			out.clean = out.clean && d.Status == attendance.DeliveryDelivered
		}
	}
	// One commit at a time, in order.
	if err := e.settle(); err != nil {
		return false, err
	}
	if len(out.attempts) == 0 && !out.consume {
		return false, nil
	}
	if out.clean && ctx.Err() == nil {
		e.after, e.w = queue[len(queue)-1], w
		e.pending = make(chan error, 1)
		go func() { e.pending <- e.commit(ctx, &w, out) }()
		return true, nil
	}
	return true, e.commit(ctx, &w, out)
}

// drain sends the queue in order until the endpoint fails. A failure of the
// head is a probe that failed, unless the event after it goes through: then
// the endpoint is fine and the head is what it rejects, so the head is
// isolated (retried on its own schedule) and the queue flows on.
func (e *endpoint) drain(ctx context.Context, w *attendance.Webhook, queue []attendance.Delivery, out *outcome) {
	for i := 0; i < len(queue); i++ {
		if ctx.Err() != nil {
			return
		}
		head := &queue[i]
		res := e.attempt(ctx, w, head, out)
		if res.OK() {
			continue
		}
		if res.aborted {
			return
		}
		if !w.Enabled {
			return // 410
		}
		// A rejection of this event rather than an outage, or a second
		// failure in a row: see whether the endpoint takes the next one.
		if (res.Rejection() || head.Attempts >= 2) && head.Status == attendance.DeliveryPending && i+1 < len(queue) && ctx.Err() == nil {
			next := &queue[i+1]
			nres := e.attempt(ctx, w, next, out)
			if nres.OK() {
				head.Isolated = true
				i++
				continue
			}
			if nres.aborted {
				return
			}
			if !w.Enabled {
				return
			}
			res = nres
		}
		if w.State == attendance.WebhookHealthy {
			w.State, w.FailingSince = attendance.WebhookFailing, out.now
		}
		if res.RetryAfter > 0 {
			// Honoured within the schedule: never past the head's final slot.
			final := head.ScheduledFrom.Add(e.d.cfg.Slots[len(e.d.cfg.Slots)-1])
			w.NotBefore = out.now.Add(res.RetryAfter)
			if w.NotBefore.After(final) && final.After(out.now) {
				w.NotBefore = final
			}
		}
		out.consume = true
		out.consumeErr = fmt.Sprintf("not sent: the endpoint was failing (%s; probed with %s)", res.Err, head.EventID)
		return
	}
}

// attempt sends one delivery and records the outcome on it, the endpoint and
// out.
func (e *endpoint) attempt(ctx context.Context, w *attendance.Webhook, del *attendance.Delivery, out *outcome) Result {
	res := e.d.cfg.Sender.Send(ctx, w, del.EventID, del.Payload, del.Attempts+1)
	if !res.OK() && ctx.Err() != nil {
		// Cut short by this node stopping, not by the endpoint: not an
		// attempt; it is sent again when delivery resumes.
		res.aborted = true
		return res
	}
	del.Attempts++
	del.LastAttemptAt, del.LastStatusCode, del.LastError = res.StartedAt, res.StatusCode, res.Err
	switch {
	case res.OK():
		del.Status, del.DeliveredAt, del.NextAttemptAt = attendance.DeliveryDelivered, res.StartedAt.Add(res.Duration), time.Time{}
		w.State, w.FailingSince, w.NotBefore, w.IncidentMailed = attendance.WebhookHealthy, time.Time{}, time.Time{}, false
		w.LastDeliveredAt = del.DeliveredAt
	default:
		e.reschedule(del, out.now)
		out.lastErr = res.Err
		if res.Gone() {
			w.Enabled = false
			w.DisabledReason = fmt.Sprintf("the endpoint answered 410 Gone at %s", res.StartedAt.UTC().Format(time.RFC3339))
			out.disabled = true
		}
	}
	if del.Status == attendance.DeliveryFailed {
		out.failed = append(out.failed, del.EventID)
	}
	out.updated = append(out.updated, del)
	out.attempts = append(out.attempts, attendance.Attempt{
		DeliveryID: del.ID, Attempt: del.Attempts, StartedAt: res.StartedAt, Duration: res.Duration, StatusCode: res.StatusCode,
		ResponseExcerpt: res.Excerpt, Error: res.Err, NextAttemptAt: del.NextAttemptAt,
	})
	return res
}

// reschedule moves a delivery whose attempt failed to its first slot after
// now, or fails it when none is left. A delivery tried before its slot (the
// head probing for a newer event) keeps its slot.
func (e *endpoint) reschedule(del *attendance.Delivery, now time.Time) {
	if del.NextAttemptAt.After(now) {
		return
	}
	slots := e.d.cfg.Slots
	i := del.Slot + 1
	for i < len(slots) && !del.ScheduledFrom.Add(slots[i]).After(now) {
		i++
	}
	del.Slot = i
	if i >= len(slots) {
		del.Status, del.NextAttemptAt, del.FailedAt = attendance.DeliveryFailed, time.Time{}, now
		return
	}
	del.NextAttemptAt = del.ScheduledFrom.Add(slots[i])
}

// commit writes a step's outcome and the endpoint's new state, with the
// e-mails it calls for, in one transaction. What was sent is committed even
// when the worker is being stopped.
func (e *endpoint) commit(ctx context.Context, w *attendance.Webhook, out *outcome) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
	defer cancel()
	before := *w
	return e.d.cfg.Store.InTx(ctx, func(tx *store.Tx) error {
		*w = before // InTx may run this again
		failed := out.failed
		if err := tx.UpdateDeliveries(ctx, out.updated); err != nil {
			return err
		}
		if err := tx.InsertAttempts(ctx, out.attempts); err != nil {
			return err
		}
		if out.consume {
			more, err := tx.ConsumeDueSlots(ctx, w.ID, out.now, e.d.cfg.Slots, out.consumeErr)
			if err != nil {
				return err
			}
			failed = append(failed[:len(failed):len(failed)], more...)
		}
		if (len(failed) > 0 && !w.IncidentMailed) || out.disabled {
			acct, err := tx.Account(ctx, w.AccountID)
			if err != nil {
				return err
			}
			if len(failed) > 0 && !w.IncidentMailed {
				w.IncidentMailed = true
				if err := tx.QueueNotification(ctx, incidentMail(acct, w, failed, out.lastErr, e.d.cfg.PublicURL)); err != nil {
					return err
				}
			}
			if out.disabled {
				if err := tx.QueueNotification(ctx, disabledMail(acct, w, e.d.cfg.PublicURL)); err != nil {
					return err
				}
			}
			tx.AfterCommit(e.d.notified)
		}
		if w.State != attendance.WebhookHealthy {
			// A retry asked for a probe after this step's attempts began.
			answered, err := tx.AnswerProbeRequest(ctx, w.ID, out.now)
			if err != nil {
				return err
			}
			if answered {
				w.NotBefore = time.Time{}
			}
		}
		return tx.SaveWebhookState(ctx, w, e.d.cfg.Owner, false)
	})
}
