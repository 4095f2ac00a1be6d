package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/punchconnect/punchconnect/internal/attendance"
	"github.com/punchconnect/punchconnect/internal/id"
)

// DeviceSorts are the fields device lists sort by; the first is the default.
var DeviceSorts = []Column{
	{Name: "created_at", Kind: KindInt}, {Name: "updated_at", Kind: KindInt}, {Name: "name", Kind: KindText},
	{Name: "serial_number", Kind: KindText}, {Name: "site", Kind: KindText}, {Name: "last_seen_at", Kind: KindInt},
}

// DeviceFilters are the fields device lists filter on, by equality.
var DeviceFilters = []Column{{Name: "site", Kind: KindText}, {Name: "status", Kind: KindText}, {Name: "serial_number", Kind: KindText}}

const deviceCols = `id, account_id, serial_number, name, site, timezone, direction_mode, status, last_seen_at,
	clock_offset_seconds, firmware, created_at, updated_at,
	verify_codes, timezone_format, dedup_window_seconds, allowed_cidrs, comm_key,
	protocol, push_version, language, ip_address, complete_through,
	user_count, fingerprint_count, face_count, log_count, log_capacity,
	registry_code, tz_offset_sent, tz_check_at, clock_samples, last_heartbeat_at, online_since, last_backlog_at, log_warned, stamps`

func scanDevice(r scanner) (attendance.Device, error) {
	var d attendance.Device
	dest, finish := deviceDest(&d)
	if err := r.Scan(dest...); err != nil {
		return d, err
	}
	return d, finish()
}

// deviceDest is where a row of deviceCols scans into d, and what turns the
// scanned values into d's fields once it has.
func deviceDest(d *attendance.Device) ([]any, func() error) {
	var mode sql.NullString
	var offset, dedup, tzSent, users, fps, faces, logs, capacity sql.NullInt64
	var status, verify, tzFormat, cidrs, samples, stamps string
	var seen, created, updated, complete, tzCheck, heartbeat, onlineSince, backlog int64
	dest := []any{&d.ID, &d.AccountID, &d.SerialNumber, &d.Name, &d.Site, &d.Timezone, &mode, &status,
		&seen, &offset, &d.Firmware, &created, &updated,
		&verify, &tzFormat, &dedup, &cidrs, &d.CommKey,
		&d.Protocol, &d.PushVersion, &d.Language, &d.IPAddress, &complete,
		&users, &fps, &faces, &logs, &capacity,
		&d.RegistryCode, &tzSent, &tzCheck, &samples, &heartbeat, &onlineSince, &backlog, &d.LogWarned, &stamps}
	return dest, func() error {
		if mode.Valid {
			m := attendance.DirectionMode(mode.String)
			d.DirectionMode = &m
		}
		d.ClockOffsetSeconds, d.DedupWindowSeconds, d.TZOffsetSent = intPtr(offset), intPtr(dedup), intPtr(tzSent)
		d.Counts = attendance.DeviceCounts{Users: intPtr(users), Fingerprints: intPtr(fps), Faces: intPtr(faces), Logs: intPtr(logs), LogCapacity: intPtr(capacity)}
		d.Status = attendance.DeviceStatus(status)
		d.VerifyCodes, d.TimezoneFormat = attendance.VerifyCodes(verify), attendance.TimezoneFormat(tzFormat)
		if cidrs != "" {
			d.AllowedCIDRs = strings.Split(cidrs, ",")
		}
		d.LastSeenAt, d.CreatedAt, d.UpdatedAt = fromMicros(seen), fromMicros(created), fromMicros(updated)
		d.CompleteThrough, d.TZCheckAt = fromMicros(complete), fromMicros(tzCheck)
		d.LastHeartbeatAt, d.OnlineSince, d.LastBacklogAt = fromMicros(heartbeat), fromMicros(onlineSince), fromMicros(backlog)
		if samples != "" {
			if err := json.Unmarshal([]byte(samples), &d.ClockSamples); err != nil {
				return fmt.Errorf("device %s clock samples: %w", d.ID, err)
			}
		}
		d.Stamps = map[string]string{}
		if err := json.Unmarshal([]byte(stamps), &d.Stamps); err != nil {
			return fmt.Errorf("device %s stamps: %w", d.ID, err)
		}
		return nil
	}
}

func intPtr(n sql.NullInt64) *int {
	if !n.Valid {
		return nil
	}
	v := int(n.Int64)
	return &v
}

func intArg(p *int) any {
	if p == nil {
		return nil
	}
	return *p
}

// forUpdate locks the selected rows on PostgreSQL. SQLite needs nothing: its
// write transactions begin IMMEDIATE and so already hold the write lock.
func (tx *Tx) forUpdate() string {
	if tx.dialect == Postgres {
		return " FOR UPDATE"
	}
	return ""
}

// skipLocked locks the selected rows on PostgreSQL, passing over rows
// another node holds.
func (tx *Tx) skipLocked() string {
	if tx.dialect == Postgres {
		return " FOR UPDATE SKIP LOCKED"
	}
	return ""
}

// checkSerialFree fails with serial_number_taken when a live device other
// than exceptID already has serial.
func (tx *Tx) checkSerialFree(ctx context.Context, accountID, serial, exceptID string) error {
	var owner, devID string
	err := tx.queryRow(ctx, `SELECT account_id, id FROM devices WHERE serial_number = ? AND deleted_at IS NULL`, serial).Scan(&owner, &devID)
	switch {
	case errors.Is(err, sql.ErrNoRows) || devID == exceptID:
		return nil
	case err != nil:
		return fmt.Errorf("look up serial: %w", err)
	}
	return serialTaken(serial, owner == accountID, devID)
}

func serialTaken(serial string, own bool, devID string) error {
	if own {
		return attendance.Errorf(attendance.CodeSerialNumberTaken, "serial_number",
			"Serial number %s is already registered in this account as %s.", serial, devID)
	}
	return attendance.Errorf(attendance.CodeSerialNumberTaken, "serial_number",
		"Serial number %s is registered to another account. A device belongs to one account at a time: its current owner must delete it before it can be registered here.", serial)
}

// CreateDevice registers a device. in must be validated; a device without a
// timezone takes the account's.
func (tx *Tx) CreateDevice(ctx context.Context, accountID string, in attendance.DeviceInput) (attendance.Device, error) {
	d := attendance.Device{
		ID: id.New(id.Device), AccountID: accountID, Status: attendance.DeviceStatusPending,
		VerifyCodes: attendance.VerifyStandard, TimezoneFormat: attendance.TimezoneHours,
		CreatedAt: tx.Now, UpdatedAt: tx.Now, Stamps: map[string]string{},
	}
	in.Apply(&d)
	if d.Timezone == "" {
		if err := tx.queryRow(ctx, `SELECT timezone FROM accounts WHERE id = ?`, accountID).Scan(&d.Timezone); err != nil {
			return d, fmt.Errorf("read account timezone: %w", err)
		}
	}
	if err := tx.checkSerialFree(ctx, accountID, d.SerialNumber, ""); err != nil {
		return d, err
	}
	_, err := tx.exec(ctx, `INSERT INTO devices (id, account_id, serial_number, name, site, timezone, direction_mode, status,
		last_seen_at, firmware, created_at, updated_at, verify_codes, timezone_format, dedup_window_seconds, allowed_cidrs, comm_key)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		d.ID, d.AccountID, d.SerialNumber, d.Name, d.Site, d.Timezone, directionArg(d.DirectionMode), string(d.Status),
		micros(d.LastSeenAt), d.Firmware, micros(d.CreatedAt), micros(d.UpdatedAt),
		string(d.VerifyCodes), string(d.TimezoneFormat), intArg(d.DedupWindowSeconds), strings.Join(d.AllowedCIDRs, ","), d.CommKey)
	if _, ok := uniqueViolation(err); ok {
		// Another node registered the serial between our check and insert.
		return d, serialTaken(d.SerialNumber, false, "")
	}
	if err != nil {
		return d, fmt.Errorf("insert device: %w", err)
	}
	return d, nil
}

func directionArg(m *attendance.DirectionMode) any {
	if m == nil {
		return nil
	}
	return string(*m)
}

// lockDevice reads a live device of the account for update.
func (tx *Tx) lockDevice(ctx context.Context, accountID, deviceID string) (attendance.Device, error) {
	d, err := scanDevice(tx.queryRow(ctx, `SELECT `+deviceCols+` FROM devices WHERE account_id = ? AND id = ? AND deleted_at IS NULL`+tx.forUpdate(), accountID, deviceID))
	if errors.Is(err, sql.ErrNoRows) {
		return d, attendance.NotFound("device", deviceID)
	}
	if err != nil {
		return d, fmt.Errorf("read device: %w", err)
	}
	return d, nil
}

// UpdateDevice changes the set fields of a device. in must be validated.
func (tx *Tx) UpdateDevice(ctx context.Context, accountID, deviceID string, in attendance.DeviceInput) (attendance.Device, error) {
	d, err := tx.lockDevice(ctx, accountID, deviceID)
	if err != nil {
		return d, err
	}
	in.Apply(&d)
	if in.SerialNumber.Set {
		if err := tx.checkSerialFree(ctx, accountID, d.SerialNumber, d.ID); err != nil {
			return d, err
		}
	}
	d.UpdatedAt = tx.Now
	_, err = tx.exec(ctx, `UPDATE devices SET serial_number = ?, name = ?, site = ?, timezone = ?, direction_mode = ?,
		verify_codes = ?, timezone_format = ?, dedup_window_seconds = ?, allowed_cidrs = ?, comm_key = ?, updated_at = ?
		WHERE id = ?`, d.SerialNumber, d.Name, d.Site, d.Timezone, directionArg(d.DirectionMode),
		string(d.VerifyCodes), string(d.TimezoneFormat), intArg(d.DedupWindowSeconds), strings.Join(d.AllowedCIDRs, ","), d.CommKey,
		micros(d.UpdatedAt), d.ID)
	if _, ok := uniqueViolation(err); ok {
		return d, serialTaken(d.SerialNumber, false, "")
	}
	if err != nil {
		return d, fmt.Errorf("update device: %w", err)
	}
	return d, nil
}

// DeleteDevice removes a device from the account. Its history stays; its
// serial number becomes free to register again.
func (tx *Tx) DeleteDevice(ctx context.Context, accountID, deviceID string) error {
	res, err := tx.exec(ctx, `UPDATE devices SET deleted_at = ?, updated_at = ? WHERE account_id = ? AND id = ? AND deleted_at IS NULL`,
		micros(tx.Now), micros(tx.Now), accountID, deviceID)
	if err != nil {
		return fmt.Errorf("delete device: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return attendance.NotFound("device", deviceID)
	}
	return nil
}

// Device reads one device of the account.
func (s *Store) Device(ctx context.Context, accountID, deviceID string) (attendance.Device, error) {
	d, err := scanDevice(s.reader().queryRow(ctx, `SELECT `+deviceCols+` FROM devices WHERE account_id = ? AND id = ? AND deleted_at IS NULL`, accountID, deviceID))
	if errors.Is(err, sql.ErrNoRows) {
		return d, attendance.NotFound("device", deviceID)
	}
	return d, err
}

// DeviceBySerial finds the live device with serial in any account: the
// gateway knows devices only by the SN they send. found is false when no
// account has registered it.
func (tx *Tx) DeviceBySerial(ctx context.Context, serial string) (d attendance.Device, found bool, err error) {
	d, err = scanDevice(tx.queryRow(ctx, `SELECT `+deviceCols+` FROM devices WHERE serial_number = ? AND deleted_at IS NULL`+tx.forUpdate(), serial))
	if errors.Is(err, sql.ErrNoRows) {
		return d, false, nil
	}
	return d, err == nil, err
}

// DeviceAndAccount reads a live device by serial number for update, with
// its account, in one statement (a device request needs both). On
// PostgreSQL only the device's row is locked: an account's devices do not
// wait for each other.
func (tx *Tx) DeviceAndAccount(ctx context.Context, serial string) (d attendance.Device, a attendance.Account, found bool, err error) {
	if img := tx.deviceImage(serial); img != nil {
		return cloneDevice(img.d), img.a, true, nil
	}
	lock := ""
	if tx.dialect == Postgres {
		lock = " FOR UPDATE OF d"
	}
	gen := tx.store.devices.gen.Load()
	dd, finishDevice := deviceDest(&d)
	ad, finishAccount := accountDest(&a)
	err = tx.queryRow(ctx, deviceAndAccountSQL+lock, serial).Scan(append(dd, ad...)...)
	if errors.Is(err, sql.ErrNoRows) {
		return d, a, false, nil
	}
	if err != nil {
		return d, a, false, err
	}
	finishAccount()
	if err := finishDevice(); err != nil {
		return d, a, false, err
	}
	if d.SerialNumber == serial { // the key SaveDeviceState finds it by
		tx.keepDeviceImage(serial, &deviceImage{d: cloneDevice(d), a: a, stored: d.LastSeenAt, gen: gen})
	}
	return d, a, true, nil
}

// deviceAndAccountSQL is built once: every device request runs it.
var deviceAndAccountSQL = `SELECT ` + qualified("d", deviceCols) + `, ` + qualified("a", accountCols) + `
	FROM devices d JOIN accounts a ON a.id = d.account_id WHERE d.serial_number = ? AND d.deleted_at IS NULL`

// qualified prefixes each of a comma-separated list of columns with alias.
func qualified(alias, cols string) string {
	parts := strings.Split(cols, ",")
	for i, c := range parts {
		parts[i] = alias + "." + strings.TrimSpace(c)
	}
	return strings.Join(parts, ", ")
}

// DeviceBySerial is the read-only twin of Tx.DeviceBySerial.
func (s *Store) DeviceBySerial(ctx context.Context, serial string) (d attendance.Device, found bool, err error) {
	d, err = scanDevice(s.reader().queryRow(ctx, `SELECT `+deviceCols+` FROM devices WHERE serial_number = ? AND deleted_at IS NULL`, serial))
	if errors.Is(err, sql.ErrNoRows) {
		return d, false, nil
	}
	return d, err == nil, err
}

// ListDevices returns one page of the account's devices.
func (s *Store) ListDevices(ctx context.Context, accountID string, p ListParams) (Page[attendance.Device], error) {
	return listQuery(ctx, s.reader(), liveRows("devices", deviceCols, accountID), p, scanDevice)
}

// CountDevices counts the account's registered devices (the rate limit scales with it).
func (s *Store) CountDevices(ctx context.Context, accountID string) (int, error) {
	var n int
	err := s.reader().queryRow(ctx, `SELECT count(*) FROM devices WHERE account_id = ? AND deleted_at IS NULL`, accountID).Scan(&n)
	return n, err
}

// SaveDeviceState writes what the gateway learned about a device: contact,
// status, firmware, counts, protocol, clock and bookkeeping. Settings the
// customer owns are not touched.
func (tx *Tx) SaveDeviceState(ctx context.Context, d *attendance.Device) error {
	img := tx.deviceImage(d.SerialNumber)
	if img != nil && img.d.ID != d.ID {
		img = nil
	}
	if img != nil && deviceStateUnchanged(img, d) {
		tx.keepDeviceImage(d.SerialNumber, &deviceImage{d: cloneDevice(*d), a: img.a, stored: img.stored, gen: img.gen})
		return nil
	}
	samples, err := json.Marshal(d.ClockSamples)
	if err != nil {
		return err
	}
	if d.ClockSamples == nil {
		samples = nil
	}
	stamps, err := json.Marshal(d.Stamps)
	if err != nil {
		return err
	}
	c := d.Counts
	// Not watched: this statement keeps the device's image (below).
	unwatched := tx.conn
	unwatched.watch = nil
	_, err = unwatched.exec(ctx, `UPDATE devices SET status = ?, last_seen_at = ?, clock_offset_seconds = ?, firmware = ?,
		protocol = ?, push_version = ?, language = ?, ip_address = ?, complete_through = ?,
		user_count = ?, fingerprint_count = ?, face_count = ?, log_count = ?, log_capacity = ?,
		registry_code = ?, tz_offset_sent = ?, tz_check_at = ?, clock_samples = ?, last_heartbeat_at = ?, online_since = ?, last_backlog_at = ?,
		log_warned = ?, stamps = ?
		WHERE id = ?`,
		string(d.Status), micros(d.LastSeenAt), intArg(d.ClockOffsetSeconds), d.Firmware,
		d.Protocol, d.PushVersion, d.Language, d.IPAddress, micros(d.CompleteThrough),
		intArg(c.Users), intArg(c.Fingerprints), intArg(c.Faces), intArg(c.Logs), intArg(c.LogCapacity),
		d.RegistryCode, intArg(d.TZOffsetSent), micros(d.TZCheckAt), string(samples), micros(d.LastHeartbeatAt), micros(d.OnlineSince), micros(d.LastBacklogAt),
		d.LogWarned, string(stamps), d.ID)
	if err != nil {
		return fmt.Errorf("save device state: %w", err)
	}
	if img != nil {
		tx.keepDeviceImage(d.SerialNumber, &deviceImage{d: cloneDevice(*d), a: img.a, stored: d.LastSeenAt, gen: img.gen})
	}
	return nil
}

// MarkOffline turns online devices whose last contact is before cutoff
// offline, and returns them as they were before the change. Each device
// changes once, however many nodes run this at the same moment.
func (tx *Tx) MarkOffline(ctx context.Context, cutoff int64, limit int) ([]attendance.Device, error) {
	rows, err := tx.query(ctx, `SELECT `+deviceCols+` FROM devices
		WHERE status = 'online' AND last_seen_at < ? AND deleted_at IS NULL ORDER BY last_seen_at LIMIT ?`+tx.skipLocked(), cutoff, limit)
	if err != nil {
		return nil, err
	}
	var out []attendance.Device
	for rows.Next() {
		d, err := scanDevice(rows)
		if err != nil {
			rows.Close()
			return nil, err
		}
		out = append(out, d)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	for _, d := range out {
		if _, err := tx.exec(ctx, `UPDATE devices SET status = 'offline' WHERE id = ?`, d.ID); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// Device reads a live device of the account inside the transaction.
func (tx *Tx) Device(ctx context.Context, accountID, deviceID string) (attendance.Device, error) {
	d, err := scanDevice(tx.queryRow(ctx, `SELECT `+deviceCols+` FROM devices WHERE account_id = ? AND id = ? AND deleted_at IS NULL`, accountID, deviceID))
	if errors.Is(err, sql.ErrNoRows) {
		return d, attendance.NotFound("device", deviceID)
	}
	return d, err
}

// DeviceAny reads a device of the account, deleted or not: history points at
// devices that may since have been removed.
func (tx *Tx) DeviceAny(ctx context.Context, accountID, deviceID string) (attendance.Device, error) {
	d, err := scanDevice(tx.queryRow(ctx, `SELECT `+deviceCols+` FROM devices WHERE account_id = ? AND id = ?`, accountID, deviceID))
	if errors.Is(err, sql.ErrNoRows) {
		return d, attendance.NotFound("device", deviceID)
	}
	return d, err
}
