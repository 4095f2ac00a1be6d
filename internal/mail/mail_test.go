package mail

import (
	"context"
	"strings"
	"testing"
)

// TestSendToSink: a message with a display-name From goes through real SMTP
// and arrives whole, with a UTF-8 subject and body.
func TestSendToSink(t *testing.T) {
	sink, err := StartSink()
	if err != nil {
		t.Fatal(err)
	}
	defer sink.Close()
	s, err := NewSMTP(sink.URL, "PunchConnect Alerts <alerts@punchconnect.test>")
	if err != nil {
		t.Fatal(err)
	}
	body := "Line one — with UTF-8.\nLine two is long enough to need quoted-printable soft line breaks when it is encoded for transport over SMTP.\n"
	if err := s.Send(context.Background(), Message{To: "ops@acme.test", Subject: "Webhook failed — évt", Body: body}); err != nil {
		t.Fatal(err)
	}
	got := sink.Messages()
	if len(got) != 1 {
		t.Fatalf("%d messages", len(got))
	}
	m := got[0]
	if m.From != "alerts@punchconnect.test" || m.To[0] != "ops@acme.test" || m.Subject != "Webhook failed — évt" || strings.ReplaceAll(m.Body, "\r\n", "\n") != body {
		t.Fatalf("received %+v", m)
	}
	for _, bad := range []string{"http://host", "smtp://", "smtp://host:25"} {
		if _, err := NewSMTP(bad, "x@y.z"); err == nil && bad != "smtp://host:25" {
			t.Errorf("NewSMTP(%q) accepted", bad)
		}
	}
	if _, err := NewSMTP("smtp://host:25", "not an address"); err == nil {
		t.Error("a bad From was accepted")
	}
}
