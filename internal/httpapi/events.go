package httpapi

import (
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/punchconnect/punchconnect/internal/attendance"
	"github.com/punchconnect/punchconnect/internal/id"
	"github.com/punchconnect/punchconnect/internal/store"
)

var eventList = listSpec{sorts: store.EventSorts, params: []string{"type", "start", "end", "device_id", "employee_id"}}

// eventQuery reads the filters of GET /v1/events (PRODUCT.md §8).
func eventQuery(c *call) (store.EventQuery, error) {
	q := c.r.URL.Query()
	eq := store.EventQuery{Type: q.Get("type"), DeviceID: q.Get("device_id"), EmployeeID: q.Get("employee_id")}
	if eq.Type != "" && !slices.Contains(attendance.SubscribableEvents, eq.Type) {
		return eq, attendance.Errorf(attendance.CodeUnknownEventType, "type", "%q is not an event type. Filter by one of %s.", eq.Type, strings.Join(attendance.SubscribableEvents, ", "))
	}
	var err error
	if eq.From, err = instantParam(q, "start"); err != nil {
		return eq, err
	}
	if eq.To, err = instantParam(q, "end"); err != nil {
		return eq, err
	}
	if !eq.From.IsZero() && !eq.To.IsZero() && eq.To.Before(eq.From) {
		return eq, invalidParam("end", "end is before start.")
	}
	return eq, nil
}

func (s *Server) listEvents(c *call) error {
	lr, err := parseList(c.r.URL.Query(), eventList)
	if err != nil {
		return err
	}
	eq, err := eventQuery(c)
	if err != nil {
		return err
	}
	page, err := s.store.ListEvents(c.ctx(), c.acct.ID, eq, lr.params)
	if err != nil {
		return err
	}
	return c.json(http.StatusOK, listOf(lr, page, viewEvent))
}

// eventOfPath reads the event of the path.
func (s *Server) eventOfPath(c *call) (attendance.Event, error) {
	evID, err := pathID(c, id.Event, "event")
	if err != nil {
		return attendance.Event{}, err
	}
	return s.store.Event(c.ctx(), c.acct.ID, evID)
}

func (s *Server) getEvent(c *call) error {
	e, err := s.eventOfPath(c)
	if err != nil {
		return err
	}
	return c.json(http.StatusOK, one[eventView]{viewEvent(e)})
}

func (s *Server) listEventDeliveries(c *call) error {
	e, err := s.eventOfPath(c)
	if err != nil {
		return err
	}
	return s.listDeliveries(c, func(dl *store.DeliveryList) error {
		if dl.EventID != "" && dl.EventID != e.ID {
			return invalidParam("event_id", "event_id filters the deliveries of the event in the path; leave it out here.")
		}
		dl.EventID = e.ID
		return nil
	})
}

// redeliverEvent queues the event again for its endpoints (or the one
// named), with the normal retry policy; the event keeps its event_id.
func (s *Server) redeliverEvent(c *call) error {
	evID, o, err := actionOf(c, id.Event, "event")
	if err != nil {
		return err
	}
	var webhookID attendance.Field[string]
	o.str("webhook_id", &webhookID)
	if err := o.done(); err != nil {
		return err
	}
	var only []string
	if webhookID.Set {
		if !id.Valid(id.Webhook, webhookID.Value) {
			return attendance.Errorf(attendance.CodeResourceNotFound, "webhook_id", "No webhook with id %q exists in this account.", webhookID.Value)
		}
		only = []string{webhookID.Value}
	}
	return s.mutateAndKick(c, http.StatusAccepted, func(tx *store.Tx) (any, error) {
		ds, err := tx.Redeliver(c.ctx(), c.acct.ID, evID, only)
		if err != nil {
			return nil, err
		}
		out := listResponse[deliveryView]{Data: make([]deliveryView, 0, len(ds))}
		for _, d := range ds {
			out.Data = append(out.Data, viewDelivery(d))
		}
		one := 1
		out.Pagination = pagination{Page: &one, PerPage: max(len(ds), 1), Total: len(ds), TotalPages: min(len(ds), 1)}
		return out, nil
	})
}

// Event stream limits.
const (
	streamBatch     = 200
	streamHeartbeat = 15 * time.Second
	streamPoll      = time.Second
)

// streamEvents streams the account's events as server-sent events, in the
// order they were recorded: each has its sequence number as id, its type as
// event and its webhook body as data. Last-Event-ID resumes after an event
// without gaps; without it the stream starts with the next event recorded.
// `punchconnect listen` reads it.
func (s *Server) streamEvents(c *call) error {
	q := c.r.URL.Query()
	for name := range q {
		if name != "types" {
			return attendance.Errorf(attendance.CodeUnknownParameter, name, "Unknown query parameter %q. The stream accepts types, a comma-separated list of event types.", name)
		}
	}
	var types []string
	if v := q.Get("types"); v != "" && v != "*" {
		for _, t := range strings.Split(v, ",") {
			t = strings.TrimSpace(t)
			if !slices.Contains(attendance.SubscribableEvents, t) {
				return attendance.Errorf(attendance.CodeUnknownEventType, "types", "%q is not an event type. Stream any of %s.", t, strings.Join(attendance.SubscribableEvents, ", "))
			}
			types = append(types, t)
		}
	}
	var after int64
	if v := c.r.Header.Get("Last-Event-ID"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 0 {
			return attendance.Errorf(attendance.CodeInvalidParameter, "Last-Event-ID", "Last-Event-ID %q is not an id this stream sent; resume with the id of the last event received.", v)
		}
		after = n
	} else {
		var err error
		if after, err = s.store.LatestEventSeq(c.ctx(), c.acct.ID); err != nil {
			return err
		}
	}
	ctx := c.r.Context()
	rc := http.NewResponseController(c.w)
	_ = rc.SetWriteDeadline(time.Time{}) // the stream outlives the server's write timeout
	h := c.w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no")
	c.w.WriteHeader(http.StatusOK)
	fmt.Fprintf(c.w, ": PunchConnect event stream of %s\nretry: 1000\n\n", c.acct.ID)
	if err := rc.Flush(); err != nil {
		return nil
	}
	heartbeat := time.NewTicker(streamHeartbeat)
	defer heartbeat.Stop()
	poll := time.NewTicker(streamPoll)
	defer poll.Stop()
	for {
		recorded := s.store.EventsRecorded()
		evs, err := s.store.EventsSince(ctx, c.acct.ID, after, streamBatch, types...)
		if err != nil {
			if ctx.Err() == nil {
				s.log.WarnContext(ctx, "event stream", "err", err)
			}
			return nil // headers are sent: end the stream; the client resumes
		}
		for _, e := range evs {
			fmt.Fprintf(c.w, "id: %d\nevent: %s\ndata: %s\n\n", e.Seq, e.Type, e.Payload)
			after = e.Seq
		}
		if len(evs) > 0 {
			if err := rc.Flush(); err != nil {
				return nil
			}
			if len(evs) == streamBatch {
				continue
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-s.streams.Done():
			return nil // shutting down: the client resumes elsewhere or later
		case <-recorded:
		case <-poll.C:
		case <-heartbeat.C:
			fmt.Fprint(c.w, ": keep-alive\n\n")
			if err := rc.Flush(); err != nil {
				return nil
			}
		}
	}
}
