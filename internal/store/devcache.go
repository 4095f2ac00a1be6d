package store

import (
	"maps"
	"reflect"
	"regexp"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/punchconnect/punchconnect/internal/attendance"
)

// Device images. Every device request reads its device and the device's
// account (DeviceAndAccount) and writes the device's state back
// (SaveDeviceState). On SQLite both run on the single writer, where they
// were about a sixth of a real-time request's time (a 45-column row through
// database/sql and the driver costs more than the b-tree look-up), so the
// writer keeps what it last read or wrote of each device as an image:
//
//   - Only the writer fills and reads the cache, inside write transactions,
//     which SQLite runs one at a time. A transaction's images join the cache
//     as it commits — just before COMMIT, while it still holds the writer, so
//     that the next transaction finds them; all images are withdrawn if the
//     COMMIT fails. A request of a group commit hands its images to the
//     group once its savepoint is released; a request rolled back leaves
//     none behind.
//   - Any other statement that writes the devices or accounts tables (an API
//     update, a deletion, a claim, offline detection) invalidates every image
//     as it runs — before its transaction commits, so no transaction after
//     it can read an older image — by moving the cache's generation on; an
//     image is valid only in the generation it was made in.
//
// The serving process is the only writer of its SQLite file (a node of its
// own; `accounts create` from the command line only adds an account), so
// no write escapes the watch; docs/OPERATIONS.md says so for hand edits.
//
// PostgreSQL serves several nodes, whose writes one node cannot see: it
// reads the device row every time (locking it). Both dialects use a
// transaction's own image to skip a state write that would change nothing
// but a last-seen time less than a second old (deviceStateUnchanged).

// maxDeviceImages bounds the cache (an image is about a kilobyte); past it
// the cache starts again.
const maxDeviceImages = 20_000

// lastSeenResolution is how far last_seen_at may lag the device's last
// request when nothing else about the device changed.
const lastSeenResolution = time.Second

// deviceImage is a device with its account as a transaction read or wrote
// it. stored is the last-seen time the database holds (the image's may be
// newer: see lastSeenResolution).
type deviceImage struct {
	d      attendance.Device
	a      attendance.Account
	stored time.Time
	gen    uint64
}

type deviceCache struct {
	gen atomic.Uint64
	mu  sync.Mutex
	m   map[string]*deviceImage // by serial number
}

func newDeviceCache() *deviceCache { return &deviceCache{m: map[string]*deviceImage{}} }

// invalidate makes every image, cached or held by a transaction, stale.
func (c *deviceCache) invalidate() {
	c.gen.Add(1)
	c.mu.Lock()
	clear(c.m)
	c.mu.Unlock()
}

func (c *deviceCache) get(serial string) *deviceImage {
	c.mu.Lock()
	defer c.mu.Unlock()
	if img := c.m[serial]; img != nil && img.gen == c.gen.Load() {
		return img
	}
	return nil
}

// install adds a committed transaction's images that are still valid.
func (c *deviceCache) install(images map[string]*deviceImage) {
	if len(images) == 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	gen := c.gen.Load()
	for serial, img := range images {
		if img.gen != gen {
			continue
		}
		if len(c.m) >= maxDeviceImages {
			clear(c.m)
		}
		c.m[serial] = img
	}
}

// writesDevicesOrAccounts matches statements that change the tables a
// device image is made of.
var writesDevicesOrAccounts = regexp.MustCompile(`(?is)\b(update|insert\s+(or\s+\w+\s+)?into|replace\s+into|delete\s+from)\s+(devices|accounts)\b`)

// watched remembers, per statement text, whether it writes those tables.
var watched sync.Map // string → bool

// watch invalidates the device images when query writes their tables.
func (c *deviceCache) watch(query string) {
	w, ok := watched.Load(query)
	if !ok {
		w = writesDevicesOrAccounts.MatchString(query)
		watched.Store(query, w)
	}
	if w.(bool) {
		c.invalidate()
	}
}

// deviceImage returns the valid image of a device this transaction, its
// group or the cache holds.
func (tx *Tx) deviceImage(serial string) *deviceImage {
	c := tx.store.devices
	gen := c.gen.Load()
	for t := tx; t != nil; t = t.group {
		if img := t.devices[serial]; img != nil && img.gen == gen {
			return img
		}
	}
	if tx.dialect != SQLite {
		return nil
	}
	return c.get(serial)
}

// keepDeviceImage records what this transaction read or wrote of a device.
func (tx *Tx) keepDeviceImage(serial string, img *deviceImage) {
	if tx.devices == nil {
		tx.devices = map[string]*deviceImage{}
	}
	tx.devices[serial] = img
}

// deviceStateUnchanged reports whether saving d over img would change
// nothing but a last-seen time that the database holds to within
// lastSeenResolution.
func deviceStateUnchanged(img *deviceImage, d *attendance.Device) bool {
	if d.LastSeenAt.Before(img.stored) || d.LastSeenAt.Sub(img.stored) >= lastSeenResolution {
		return false
	}
	was := img.d
	was.LastSeenAt = d.LastSeenAt
	return reflect.DeepEqual(&was, d)
}

// cloneDevice copies d with nothing shared: a transaction changes the copy
// it is handed.
func cloneDevice(d attendance.Device) attendance.Device {
	d.DirectionMode = clonePtr(d.DirectionMode)
	d.ClockOffsetSeconds = clonePtr(d.ClockOffsetSeconds)
	d.DedupWindowSeconds = clonePtr(d.DedupWindowSeconds)
	d.TZOffsetSent = clonePtr(d.TZOffsetSent)
	d.Counts.Users = clonePtr(d.Counts.Users)
	d.Counts.Fingerprints = clonePtr(d.Counts.Fingerprints)
	d.Counts.Faces = clonePtr(d.Counts.Faces)
	d.Counts.Logs = clonePtr(d.Counts.Logs)
	d.Counts.LogCapacity = clonePtr(d.Counts.LogCapacity)
	d.AllowedCIDRs = slices.Clone(d.AllowedCIDRs)
	d.ClockSamples = slices.Clone(d.ClockSamples)
	d.Stamps = maps.Clone(d.Stamps)
	return d
}

func clonePtr[T any](p *T) *T {
	if p == nil {
		return nil
	}
	v := *p
	return &v
}
