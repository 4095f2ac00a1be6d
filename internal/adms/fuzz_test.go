package adms

import (
	"strings"
	"testing"
	"unicode/utf8"
)

// Every parser that faces a device is fuzzed; the seeds run as ordinary tests.

var wireSeeds = []string{
	"1452\t2015-07-30 15:16:28\t0\t1\t0\t0\t0\n",
	"016\t2026-03-28 09:01:23\t1\t15\r\n20156107\t2020-02-22 23:10:05\t255\t1\t\t0\t0\t2\n",
	"time=2017-01-10 11:49:32\tpin=1001\tcardno=0\tevent=0\tinoutstatus=0\tverifytype=0000000000000010\tindex=42\n",
	"USER PIN=982\tName=Richard\tPri=14\tPasswd=\tCard=[15CD5B07]\nOPLOG 4\t14\t2015-07-30 10:22:34\t0\t0\t0\t0\n",
	"user uid=1\tcardno=\tpin=1\tpassword=\tgroup=1\tname=\tprivilege=14\n",
	"ID=info8487&Return=0&CMD=DATA\nID=i1&Return=0&CMD=INFO\nMaxAttLogCount=200000\n",
	"~OEMVendor=ZKTECO CO., LTD.,FingerFunOn=1",
	"", "\xef\xbb\xbf", "\x00\xff\t\t\t\n", "=\t=\n&&&", "ID=&Return=&CMD=",
}

func FuzzParseATTLOG(f *testing.F) {
	for _, s := range wireSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		for _, r := range ParseATTLOG(body) {
			if r.Err == "" && (r.Wall.IsZero() || r.PIN == "" || len(r.PIN) > MaxPINLength) {
				t.Fatalf("accepted a bad record %+v", r)
			}
			if strings.ContainsAny(r.Raw, "\n") {
				t.Fatalf("raw spans lines: %q", r.Raw)
			}
		}
	})
}

func FuzzParseRtlog(f *testing.F) {
	for _, s := range wireSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		for _, e := range ParseRtlog(body) {
			if e.IsPunch && e.Err == "" && e.Wall.IsZero() {
				t.Fatalf("punch without a time: %+v", e)
			}
			if !e.IsPunch && e.NotPunchBy == "" {
				t.Fatalf("not a punch without a reason: %+v", e)
			}
		}
	})
}

func FuzzParseOPERLOG(f *testing.F) {
	for _, s := range wireSeeds {
		f.Add([]byte(s), "83")
	}
	f.Fuzz(func(t *testing.T, body []byte, language string) {
		for _, l := range ParseOPERLOG(body) {
			if name, ok := l.Fields["name"]; ok {
				if got := decodeName([]byte(name), language); !utf8.ValidString(got) {
					t.Fatalf("decoded name is not UTF-8: %q", got)
				}
			}
		}
		for _, l := range ParseTableData(body) {
			_ = transactionRecord(l)
		}
	})
}

func FuzzParseDeviceCmd(f *testing.F) {
	for _, s := range wireSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		for _, r := range ParseDeviceCmd(body) {
			if r.ID == "" {
				t.Fatalf("result without an ID: %+v", r)
			}
		}
	})
}

func FuzzParseQuery(f *testing.F) {
	for _, s := range []string{"SN=BKRK233600045&options=all&pushver=2.4.1&language=69",
		"SN=X&table=ATTLOG&Stamp=9999", "INFO=Ver%202.0.12,0,0,0,1.2.3.4", "%zz=%zz&&=&a", "SN=" + strings.Repeat("A", 300)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		q := ParseQuery(raw)
		_, _ = ParseInfo(q.Get("INFO"))
		_ = ParseOptions([]byte(raw))
		req := request{endpoint: "cdata", method: "POST", query: q, rawQuery: raw}
		_ = uploadKind(req)
		_ = tableAck(req, 3)
	})
}
