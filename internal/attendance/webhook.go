package attendance

import (
	"crypto/rand"
	"encoding/base64"
	"net/url"
	"slices"
	"strings"
	"time"
)

// EventWebhookTest is the type of the event POST /v1/webhooks/{id}/test sends.
const EventWebhookTest = "webhook.test"

// SubscribableEvents are the event types a webhook may subscribe to. "*"
// subscribes to all of them, including those added later.
var SubscribableEvents = []string{EventAttendancePunch, EventDeviceStatus, EventDeviceLogNearlyFull,
	EventCommandSucceeded, EventCommandFailed, EventBatchCompleted}

// Webhook states.
const (
	WebhookHealthy = "healthy" // deliveries go out in order as they come
	WebhookFailing = "failing" // the last attempt failed: new events queue behind the oldest
)

// Webhook is an endpoint of the account that receives events.
type Webhook struct {
	ID                  string
	AccountID           string
	URL                 string
	Events              []string
	Description         string
	Enabled             bool
	DisabledReason      string
	Secret              string
	PreviousSecret      string
	PreviousSecretUntil time.Time

	State           string
	FailingSince    time.Time
	NotBefore       time.Time // Retry-After asked us not to send before this
	NextDueAt       time.Time // when the endpoint needs the dispatcher next; zero: nothing to do
	LeaseOwner      string
	LeaseUntil      time.Time
	IncidentMailed  bool
	LastDeliveredAt time.Time
	CreatedAt       time.Time
	UpdatedAt       time.Time
}

// Subscribed reports whether the webhook wants events of type typ.
func (w *Webhook) Subscribed(typ string) bool {
	if typ == EventWebhookTest {
		return false // sent on request only
	}
	return slices.Contains(w.Events, "*") || slices.Contains(w.Events, typ)
}

// Secrets are the secrets that sign a delivery at now: the current one,
// then the previous one while its grace period lasts.
func (w *Webhook) Secrets(now time.Time) []string {
	if w.PreviousSecret != "" && now.Before(w.PreviousSecretUntil) {
		return []string{w.Secret, w.PreviousSecret}
	}
	return []string{w.Secret}
}

// Delivery statuses.
const (
	DeliveryPending   = "pending"
	DeliveryDelivered = "delivered"
	DeliveryFailed    = "failed"
)

// Delivery sources: why a delivery exists.
const (
	SourceEvent     = "event"
	SourceRedeliver = "redeliver"
	SourceReplay    = "replay"
	SourceTest      = "test"
	SourceRetry     = "retry"
)

// Delivery is one event on its way to one endpoint.
type Delivery struct {
	Seq            int64
	ID             string
	AccountID      string
	WebhookID      string
	EventID        string
	EventSeq       int64
	EventType      string
	Status         string
	Isolated       bool // rejected alone while the endpoint answers others: retried on its own schedule
	Attempts       int
	Slot           int       // index of its next slot in the retry schedule
	ScheduledFrom  time.Time // the schedule's offsets count from here (when the event was recorded, or requeued)
	NextAttemptAt  time.Time
	LastAttemptAt  time.Time
	LastStatusCode int
	LastError      string
	DeliveredAt    time.Time
	FailedAt       time.Time // when it was given up
	Source         string
	CreatedAt      time.Time

	Payload      []byte    // the event's body, when read for sending
	AttemptLog   []Attempt // when read for showing
	EventCreated time.Time
}

// Attempt is one try at sending a delivery.
type Attempt struct {
	DeliveryID      string
	Attempt         int
	StartedAt       time.Time
	Duration        time.Duration
	StatusCode      int // 0: no response
	ResponseExcerpt string
	Error           string
	NextAttemptAt   time.Time // zero: none (delivered, or failed for good)
}

// Replay statuses.
const (
	ReplayRunning   = "running"
	ReplayCompleted = "completed"
)

// Replay is a background job re-sending an endpoint's history.
type Replay struct {
	ID         string
	AccountID  string
	WebhookID  string
	Start, End time.Time
	EventTypes []string
	Status     string
	Total      int
	Enqueued   int
	CursorSeq  int64
	CreatedAt  time.Time
	FinishedAt time.Time
}

// Notification is an e-mail in the outbox.
type Notification struct {
	Seq       int64
	AccountID string
	Recipient string
	Subject   string
	Body      string
	Status    string
	Attempts  int
	LastError string
	CreatedAt time.Time
	SentAt    time.Time
}

// Limits of webhook inputs.
const (
	MaxWebhookURLLength    = 2048
	MaxWebhookSecretLength = 255
	MinWebhookSecretLength = 8
	MaxWebhooksPerAccount  = 50
)

// WebhookInput is a create or update of a webhook.
type WebhookInput struct {
	URL         Field[string]
	Events      Field[[]string]
	Description Field[string]
	Enabled     Field[bool]
	Secret      Field[string]
}

// Validate checks the input (the URL's address is checked apart, since it
// takes a DNS look-up). On create, url is required.
func (in *WebhookInput) Validate(create bool) error {
	if create && !in.URL.Set {
		return Errorf(CodeMissingParameter, "url", "url is required: the HTTPS endpoint of your application that receives events.")
	}
	if in.URL.Set {
		u, err := url.Parse(in.URL.Value)
		switch {
		case err != nil || u.Host == "" || u.Hostname() == "":
			return Errorf(CodeInvalidWebhookURL, "url", "%q is not an absolute URL such as https://example.com/webhooks/attendance.", in.URL.Value)
		case u.Scheme != "http" && u.Scheme != "https":
			return Errorf(CodeInvalidWebhookURL, "url", "The URL must use http or https, not %q.", u.Scheme)
		case u.User != nil:
			return Errorf(CodeInvalidWebhookURL, "url", "The URL must not carry a user name or password; authenticate webhooks by their signature.")
		case len(in.URL.Value) > MaxWebhookURLLength:
			return Errorf(CodeInvalidWebhookURL, "url", "The URL is longer than %d characters.", MaxWebhookURLLength)
		}
	}
	if in.Events.Set {
		if len(in.Events.Value) == 0 {
			return Errorf(CodeInvalidParameter, "events", `events must list at least one event type, or "*" for all.`)
		}
		for _, e := range in.Events.Value {
			if e != "*" && !slices.Contains(SubscribableEvents, e) {
				return Errorf(CodeUnknownEventType, "events", "%q is not an event type. Subscribe to %s, or \"*\" for all.", e, strings.Join(SubscribableEvents, ", "))
			}
		}
	}
	if in.Description.Set {
		if err := ValidateText("description", in.Description.Value, 500); err != nil {
			return err
		}
	}
	if in.Secret.Set {
		s := in.Secret.Value
		if len(s) < MinWebhookSecretLength || len(s) > MaxWebhookSecretLength || strings.IndexFunc(s, func(r rune) bool { return r <= ' ' || r > '~' }) >= 0 {
			return Errorf(CodeInvalidParameter, "secret", "secret must be %d to %d printable characters without spaces; leave it out to get a generated whsec_… secret.",
				MinWebhookSecretLength, MaxWebhookSecretLength)
		}
	}
	return nil
}

// NewWebhookSecret returns a fresh signing secret: whsec_ and 32 random
// bytes in standard base64, the form stock Standard Webhooks libraries take.
func NewWebhookSecret() string {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic("crypto/rand: " + err.Error())
	}
	return "whsec_" + base64.StdEncoding.EncodeToString(b[:])
}
