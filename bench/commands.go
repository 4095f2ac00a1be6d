package main

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/punchconnect/punchconnect/internal/simulator"
)

// benchBatch: one batch syncs a 5,000-employee roster to 50 simulated
// devices. Devices poll at the default interval (10 s), each at its own
// phase, and, like firmware fetching a long command queue, poll again at
// once after a reply that carried commands; each reply holds at most 200
// lines. Measured: the time from the POST until every device has been
// handed every line, and until the batch is complete (every line
// acknowledged).
func benchBatch(bin, dir string) []result {
	const devices, employees = 50, 5000
	poll := 10 * time.Second
	s := startServer(bin, dir, "--device-poll-interval", poll.String(), "--rate-limit-per-device", "1000000")
	defer s.stop()
	serials := s.setup(devices, employees)
	var ids []string
	var list struct {
		Data []struct {
			ID string `json:"id"`
		} `json:"data"`
	}
	check(json.Unmarshal(s.api("GET", "/v1/devices?per_page=500", nil), &list))
	for _, d := range list.Data {
		ids = append(ids, d.ID)
	}
	sims := make([]*simulator.Device, devices)
	for i, sn := range serials {
		sims[i] = &simulator.Device{Serial: sn, Server: s.deviceURL(i), HTTP: client}
		_, err := sims[i].Handshake(context.Background())
		check(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	var handed atomic.Int64
	allHanded := make(chan struct{})
	var once sync.Once
	start := time.Now()
	var wg sync.WaitGroup
	for i, d := range sims {
		wg.Go(func() {
			// Devices poll at their own phase of the interval.
			select {
			case <-ctx.Done():
			case <-time.After(poll * time.Duration(i) / devices):
			}
			got := 0
			for ctx.Err() == nil {
				cmds, err := d.Heartbeat(ctx, "")
				if err != nil {
					time.Sleep(100 * time.Millisecond)
					continue
				}
				got += len(cmds)
				if len(cmds) > 0 {
					if got >= employees && handed.Add(1) == devices {
						once.Do(func() { close(allHanded) })
					}
					continue // a long queue: fetch again at once
				}
				select {
				case <-ctx.Done():
				case <-time.After(poll):
				}
			}
		})
	}
	t0 := time.Now()
	var b struct {
		Data struct {
			ID string `json:"id"`
		} `json:"data"`
	}
	check(json.Unmarshal(s.api("POST", "/v1/batches", map[string]any{"command": "sync_all_employees", "device_ids": ids}), &b))
	created := time.Since(t0)
	select {
	case <-allHanded:
	case <-ctx.Done():
	}
	handedAt := time.Since(t0)
	completeAt := time.Duration(0)
	for ctx.Err() == nil {
		var st struct {
			Data struct {
				Status string `json:"status"`
			} `json:"data"`
		}
		check(json.Unmarshal(s.api("GET", "/v1/batches/"+b.Data.ID, nil), &st))
		if st.Data.Status == "completed" {
			completeAt = time.Since(t0)
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	cancel()
	wg.Wait()
	_ = start
	intervals := handedAt.Seconds() / poll.Seconds()
	return []result{{
		name: fmt.Sprintf("Batch sync of %d employees to %d devices (poll interval %s, 200 lines a reply)", employees, devices, poll),
		figure: fmt.Sprintf("handed to every device in %.1f s (%.1f poll intervals); completed in %.1f s; the POST took %.1f s",
			handedAt.Seconds(), intervals, completeAt.Seconds(), created.Seconds()),
		limit: fmt.Sprintf("%.0f s: the last device's first poll", poll.Seconds()),
		ratio: fmt.Sprintf("%.1f×", intervals),
		goal:  "≤ 2 poll intervals", met: completeAt > 0 && intervals <= 2, rss: s.peakRSS(),
		note: fmt.Sprintf("%d command lines; devices poll again at once after a reply with commands", devices*employees),
	}}
}
