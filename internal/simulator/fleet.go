package simulator

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net/http"
	"sync"
	"time"
)

// Plan is what a simulated fleet does.
type Plan struct {
	Devices          int
	Employees        int
	PunchesPerMinute float64 // per device
	SerialPrefix     string
	Timezone         string
	Site             string
	// Misbehaviour.
	OfflineEvery  time.Duration // 0: never goes offline
	OfflineFor    time.Duration
	LostAckRate   float64
	DriftPerHour  time.Duration
	ClockOffset   time.Duration
	State255Share float64 // share of devices without a punch-state key
	BatchSize     int     // records per backlog upload
	Suffix        string  // ".aspx" for eSSL-style paths
}

// Fleet is a set of simulated devices with the account they belong to.
type Fleet struct {
	Server  string
	APIKey  string
	Plan    Plan
	HTTP    *http.Client
	Log     func(format string, args ...any)
	Devices []*Device
	Badges  []string
}

// Setup registers the fleet's devices and employees in the account, when
// they are absent, and builds the devices.
func (f *Fleet) Setup(ctx context.Context) error {
	p := &f.Plan
	if p.SerialPrefix == "" {
		p.SerialPrefix = "SIM"
	}
	if p.Timezone == "" {
		p.Timezone = "UTC"
	}
	if p.Employees <= 0 {
		p.Employees = 20
	}
	if p.BatchSize <= 0 {
		p.BatchSize = 100
	}
	loc, err := time.LoadLocation(p.Timezone)
	if err != nil {
		return err
	}
	employees := make([]map[string]any, p.Employees)
	f.Badges = make([]string, p.Employees)
	for i := range employees {
		f.Badges[i] = fmt.Sprintf("%d", 1000+i)
		employees[i] = map[string]any{"badge_number": f.Badges[i], "name": fmt.Sprintf("Simulated Employee %d", i+1)}
	}
	for start := 0; start < len(employees); start += 5000 {
		end := min(start+5000, len(employees))
		if _, err := f.api(ctx, http.MethodPost, "/v1/employees/batch", map[string]any{"employees": employees[start:end]}, http.StatusOK); err != nil {
			return fmt.Errorf("register employees: %w", err)
		}
	}
	for i := range p.Devices {
		serial := fmt.Sprintf("%s%05d", p.SerialPrefix, i+1)
		body := map[string]any{"serial_number": serial, "name": "Simulated " + serial, "timezone": p.Timezone, "site": p.Site}
		status, err := f.api(ctx, http.MethodPost, "/v1/devices", body, http.StatusCreated, http.StatusConflict)
		if err != nil {
			return fmt.Errorf("register %s: %w", serial, err)
		}
		if status == http.StatusConflict {
			f.logf("device %s is already registered", serial)
		}
		d := &Device{
			Serial: serial, Server: f.Server, HTTP: f.HTTP, Location: loc, ClockOffset: p.ClockOffset,
			DriftPerHour: p.DriftPerHour, LostAckRate: p.LostAckRate, Suffix: p.Suffix,
			State255: p.State255Share > 0 && float64(i) < math.Ceil(p.State255Share*float64(p.Devices)),
		}
		f.Devices = append(f.Devices, d)
	}
	return nil
}

func (f *Fleet) logf(format string, args ...any) {
	if f.Log != nil {
		f.Log(format, args...)
	}
}

// api calls the REST API with the fleet's key and returns the status, which
// must be one of want.
func (f *Fleet) api(ctx context.Context, method, path string, body any, want ...int) (int, error) {
	b, err := json.Marshal(body)
	if err != nil {
		return 0, err
	}
	req, err := http.NewRequestWithContext(ctx, method, f.Server+path, bytes.NewReader(b))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Authorization", "Bearer "+f.APIKey)
	req.Header.Set("Content-Type", "application/json")
	client := f.HTTP
	if client == nil {
		client = http.DefaultClient
	}
	resp, err := client.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<16))
	for _, w := range want {
		if resp.StatusCode == w {
			return resp.StatusCode, nil
		}
	}
	return resp.StatusCode, fmt.Errorf("%s %s: HTTP %d: %s", method, path, resp.StatusCode, bytes.TrimSpace(data))
}

// Run runs every device until ctx ends.
func (f *Fleet) Run(ctx context.Context) {
	var wg sync.WaitGroup
	for i, d := range f.Devices {
		wg.Go(func() { f.runDevice(ctx, d, i) })
	}
	wg.Wait()
}

// runDevice is one device's life: a handshake, then heartbeats every Delay
// and punches at random, uploaded at once when online and as a backlog
// after an offline period.
func (f *Fleet) runDevice(ctx context.Context, d *Device, index int) {
	p := f.Plan
	for {
		if _, err := d.Handshake(ctx); err == nil {
			break
		} else if ctx.Err() == nil {
			f.logf("%s: handshake: %v", d.Serial, err)
		}
		if !sleep(ctx, 5*time.Second) {
			return
		}
	}
	// Stagger the devices so they do not all poll in the same instant.
	if !sleep(ctx, time.Duration(rand.Int64N(int64(d.Delay())))) {
		return
	}
	nextHeartbeat := time.Now()
	nextPunch := time.Now().Add(f.punchGap())
	offlineFrom, offlineTo := f.offlineWindow(time.Now(), index)
	for {
		now := time.Now()
		online := p.OfflineEvery <= 0 || now.Before(offlineFrom) || !now.Before(offlineTo)
		if p.OfflineEvery > 0 && !now.Before(offlineTo) {
			offlineFrom, offlineTo = f.offlineWindow(now, index)
		}
		if !now.Before(nextPunch) {
			d.Record(f.Badges[rand.IntN(len(f.Badges))], d.now(), []int{0, 1}[rand.IntN(2)], []int{1, 15, 4}[rand.IntN(3)])
			nextPunch = now.Add(f.punchGap())
			if online {
				if _, err := d.Upload(ctx, p.BatchSize); err != nil && ctx.Err() == nil {
					f.logf("%s: upload: %v", d.Serial, err)
				}
			}
		}
		if !now.Before(nextHeartbeat) {
			nextHeartbeat = now.Add(d.Delay())
			if online {
				// A device drains its backlog before it polls again.
				for d.Pending() > 0 && ctx.Err() == nil {
					if _, err := d.Upload(ctx, p.BatchSize); err != nil {
						if ctx.Err() == nil {
							f.logf("%s: backlog upload: %v", d.Serial, err)
						}
						break
					}
				}
				if _, err := d.Heartbeat(ctx, ""); err != nil && ctx.Err() == nil {
					f.logf("%s: heartbeat: %v", d.Serial, err)
				}
			}
		}
		wait := min(time.Until(nextPunch), time.Until(nextHeartbeat))
		if !sleep(ctx, max(wait, time.Millisecond)) {
			return
		}
	}
}

// punchGap is the time to a device's next punch: exponential, so punches
// arrive as a Poisson process of the planned rate.
func (f *Fleet) punchGap() time.Duration {
	if f.Plan.PunchesPerMinute <= 0 {
		return 24 * time.Hour
	}
	mean := time.Minute.Seconds() / f.Plan.PunchesPerMinute
	return time.Duration(rand.ExpFloat64() * mean * float64(time.Second))
}

// offlineWindow is the next offline period of a device, spread across the
// fleet so devices do not all drop at once.
func (f *Fleet) offlineWindow(now time.Time, index int) (time.Time, time.Time) {
	p := f.Plan
	if p.OfflineEvery <= 0 {
		return time.Time{}, time.Time{}
	}
	phase := time.Duration(float64(p.OfflineEvery) * float64(index%10) / 10)
	start := now.Add(p.OfflineEvery/2 + phase%p.OfflineEvery)
	return start, start.Add(p.OfflineFor)
}

func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// Totals sums the stats of the fleet.
func (f *Fleet) Totals() Stats {
	var t Stats
	for _, d := range f.Devices {
		s := d.Stats()
		t.Punches += s.Punches
		t.Uploaded += s.Uploaded
		t.Resent += s.Resent
		t.Uploads += s.Uploads
		t.Heartbeats += s.Heartbeats
		t.Commands += s.Commands
		t.Failures += s.Failures
	}
	return t
}
