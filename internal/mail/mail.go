// Package mail sends PunchConnect's e-mails over SMTP, and provides an
// in-process SMTP server that tests receive them with.
package mail

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"mime"
	"mime/quotedprintable"
	"net"
	"net/mail"
	"net/url"
	"strings"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

// Message is one plain-text e-mail.
type Message struct {
	To      string
	Subject string
	Body    string
}

// Sender sends e-mails.
type Sender interface {
	Send(ctx context.Context, m Message) error
}

// SMTP sends through an SMTP server given as smtp://user:pass@host:port
// (STARTTLS when the server offers it) or smtps://… (TLS from the start).
type SMTP struct {
	addr        string
	host        string
	implicitTLS bool
	user, pass  string
	from        string // the From header, as given
	sender      string // its bare address, for the envelope
	// InsecureSkipVerify accepts any certificate (test servers only).
	InsecureSkipVerify bool
}

// NewSMTP parses an SMTP URL and the From address.
func NewSMTP(rawURL, from string) (*SMTP, error) {
	u, err := url.Parse(rawURL)
	if err != nil || u.Host == "" || (u.Scheme != "smtp" && u.Scheme != "smtps") {
		return nil, fmt.Errorf("--smtp-url %q: want smtp://user:pass@host:port or smtps://…", redact(rawURL))
	}
	addr, err := mail.ParseAddress(from)
	if err != nil {
		return nil, fmt.Errorf("--smtp-from %q is not an e-mail address", from)
	}
	s := &SMTP{addr: u.Host, host: u.Hostname(), implicitTLS: u.Scheme == "smtps", from: addr.String(), sender: addr.Address}
	if u.Port() == "" {
		s.addr = net.JoinHostPort(u.Hostname(), map[bool]string{true: "465", false: "587"}[s.implicitTLS])
	}
	if u.User != nil {
		s.user = u.User.Username()
		s.pass, _ = u.User.Password()
	}
	return s, nil
}

func redact(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparsable)"
	}
	return u.Redacted()
}

// Send delivers m, bounded by ctx (and 30 s at most).
func (s *SMTP) Send(ctx context.Context, m Message) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	c, err := s.connect(ctx, false)
	if err != nil {
		return err
	}
	if ok, _ := c.Extension("STARTTLS"); ok && !s.implicitTLS {
		// The server offers TLS: talk to it over TLS.
		_ = c.Quit()
		if c, err = s.connect(ctx, true); err != nil {
			return err
		}
	}
	defer c.Close()
	if s.user != "" {
		if err := c.Auth(sasl.NewPlainClient("", s.user, s.pass)); err != nil {
			return fmt.Errorf("smtp auth: %w", err)
		}
	}
	if err := c.SendMail(s.sender, []string{m.To}, bytes.NewReader(Format(s.from, m, time.Now()))); err != nil {
		return fmt.Errorf("smtp send: %w", err)
	}
	return c.Quit()
}

// connect opens a session: TLS from the start for smtps, STARTTLS when asked.
func (s *SMTP) connect(ctx context.Context, startTLS bool) (*smtp.Client, error) {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", s.addr)
	if err != nil {
		return nil, fmt.Errorf("smtp: %w", err)
	}
	if deadline, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(deadline)
	}
	tlsConfig := &tls.Config{ServerName: s.host, InsecureSkipVerify: s.InsecureSkipVerify}
	var c *smtp.Client
	switch {
	case s.implicitTLS:
		c = smtp.NewClient(tls.Client(conn, tlsConfig))
	case startTLS:
		if c, err = smtp.NewClientStartTLS(conn, tlsConfig); err != nil {
			conn.Close()
			return nil, fmt.Errorf("smtp starttls: %w", err)
		}
	default:
		c = smtp.NewClient(conn)
	}
	if err := c.Hello("punchconnect"); err != nil {
		c.Close()
		return nil, fmt.Errorf("smtp hello: %w", err)
	}
	return c, nil
}

// Format renders m as an RFC 5322 message with a quoted-printable UTF-8 body.
func Format(from string, m Message, at time.Time) []byte {
	var b bytes.Buffer
	var id [12]byte
	_, _ = rand.Read(id[:])
	domain := "punchconnect.local"
	if a, err := mail.ParseAddress(from); err == nil {
		if _, d, ok := strings.Cut(a.Address, "@"); ok {
			domain = d
		}
	}
	fmt.Fprintf(&b, "From: %s\r\nTo: %s\r\nSubject: %s\r\nDate: %s\r\nMessage-ID: <%s@%s>\r\n",
		from, m.To, mime.QEncoding.Encode("utf-8", m.Subject), at.UTC().Format(time.RFC1123Z), hex.EncodeToString(id[:]), domain)
	b.WriteString("MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n")
	w := quotedprintable.NewWriter(&b)
	_, _ = w.Write([]byte(strings.ReplaceAll(strings.ReplaceAll(m.Body, "\r\n", "\n"), "\n", "\r\n")))
	_ = w.Close()
	return b.Bytes()
}

// ErrNoRecipient is returned for an account without an e-mail address.
var ErrNoRecipient = errors.New("the account has no e-mail address")
