package mail

import (
	"bytes"
	"io"
	"mime"
	"mime/quotedprintable"
	"net"
	"net/mail"
	"strings"
	"sync"

	"github.com/emersion/go-smtp"
)

// Received is an e-mail a Sink got.
type Received struct {
	From    string
	To      []string
	Subject string
	Body    string
}

// Sink is an SMTP server on loopback that keeps what it receives: the test
// double of a mail server, speaking real SMTP.
type Sink struct {
	URL    string
	server *smtp.Server
	mu     sync.Mutex
	got    []Received
	notify chan struct{}
}

// StartSink starts a sink on a free loopback port.
func StartSink() (*Sink, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	s := &Sink{URL: "smtp://" + l.Addr().String(), notify: make(chan struct{}, 1)}
	s.server = smtp.NewServer(smtp.BackendFunc(func(*smtp.Conn) (smtp.Session, error) { return &sinkSession{sink: s}, nil }))
	s.server.Domain = "localhost"
	s.server.AllowInsecureAuth = true
	go func() { _ = s.server.Serve(l) }()
	return s, nil
}

// Close stops the sink.
func (s *Sink) Close() error { return s.server.Close() }

// Messages returns what arrived so far.
func (s *Sink) Messages() []Received {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Received(nil), s.got...)
}

// Arrived is signalled when a message arrives.
func (s *Sink) Arrived() <-chan struct{} { return s.notify }

type sinkSession struct {
	sink *Sink
	from string
	to   []string
}

func (ss *sinkSession) Reset()        { ss.from, ss.to = "", nil }
func (ss *sinkSession) Logout() error { return nil }
func (ss *sinkSession) Mail(from string, _ *smtp.MailOptions) error {
	ss.from = from
	return nil
}
func (ss *sinkSession) Rcpt(to string, _ *smtp.RcptOptions) error {
	ss.to = append(ss.to, to)
	return nil
}

func (ss *sinkSession) Data(r io.Reader) error {
	raw, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	msg, err := mail.ReadMessage(bytes.NewReader(raw))
	if err != nil {
		return err
	}
	subject, _ := new(mime.WordDecoder).DecodeHeader(msg.Header.Get("Subject"))
	var body []byte
	if strings.EqualFold(msg.Header.Get("Content-Transfer-Encoding"), "quoted-printable") {
		body, err = io.ReadAll(quotedprintable.NewReader(msg.Body))
	} else {
		body, err = io.ReadAll(msg.Body)
	}
	if err != nil {
		return err
	}
	ss.sink.mu.Lock()
	ss.sink.got = append(ss.sink.got, Received{From: ss.from, To: ss.to, Subject: subject, Body: strings.ReplaceAll(string(body), "\r\n", "\n")})
	ss.sink.mu.Unlock()
	select {
	case ss.sink.notify <- struct{}{}:
	default:
	}
	return nil
}
