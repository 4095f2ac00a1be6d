package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/punchconnect/punchconnect/internal/attendance"
	"github.com/punchconnect/punchconnect/internal/id"
)

// DeviceSorts are the fields device lists sort by; the first is the default.
var DeviceSorts = []Column{
	{"created_at", KindInt}, {"updated_at", KindInt}, {"name", KindText},
	{"serial_number", KindText}, {"site", KindText}, {"last_seen_at", KindInt},
}

// DeviceFilters are the fields device lists filter on, by equality.
var DeviceFilters = []Column{{"site", KindText}, {"status", KindText}, {"serial_number", KindText}}

const deviceCols = "id, account_id, serial_number, name, site, timezone, direction_mode, status, last_seen_at, clock_offset_seconds, firmware, created_at, updated_at"

func scanDevice(r scanner) (attendance.Device, error) {
	var d attendance.Device
	var mode sql.NullString
	var offset sql.NullInt64
	var status string
	var seen, created, updated int64
	if err := r.Scan(&d.ID, &d.AccountID, &d.SerialNumber, &d.Name, &d.Site, &d.Timezone, &mode, &status,
		&seen, &offset, &d.Firmware, &created, &updated); err != nil {
		return d, err
	}
	if mode.Valid {
		m := attendance.DirectionMode(mode.String)
		d.DirectionMode = &m
	}
	if offset.Valid {
		v := int(offset.Int64)
		d.ClockOffsetSeconds = &v
	}
	d.Status = attendance.DeviceStatus(status)
	d.LastSeenAt, d.CreatedAt, d.UpdatedAt = fromMicros(seen), fromMicros(created), fromMicros(updated)
	return d, nil
}

func deviceID(d attendance.Device) string { return d.ID }

// forUpdate locks the selected rows on PostgreSQL. SQLite needs nothing: its
// write transactions begin IMMEDIATE and so already hold the write lock.
func (tx *Tx) forUpdate() string {
	if tx.dialect == Postgres {
		return " FOR UPDATE"
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
		CreatedAt: tx.Now, UpdatedAt: tx.Now,
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
	_, err := tx.exec(ctx, `INSERT INTO devices (`+deviceCols+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		d.ID, d.AccountID, d.SerialNumber, d.Name, d.Site, d.Timezone, directionArg(d.DirectionMode), string(d.Status),
		micros(d.LastSeenAt), nil, d.Firmware, micros(d.CreatedAt), micros(d.UpdatedAt))
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

// UpdateDevice changes the set fields of a device. in must be validated.
func (tx *Tx) UpdateDevice(ctx context.Context, accountID, deviceID string, in attendance.DeviceInput) (attendance.Device, error) {
	d, err := scanDevice(tx.queryRow(ctx, `SELECT `+deviceCols+` FROM devices WHERE account_id = ? AND id = ? AND deleted_at IS NULL`+tx.forUpdate(), accountID, deviceID))
	if errors.Is(err, sql.ErrNoRows) {
		return d, attendance.NotFound("device", deviceID)
	}
	if err != nil {
		return d, fmt.Errorf("read device: %w", err)
	}
	in.Apply(&d)
	if in.SerialNumber.Set {
		if err := tx.checkSerialFree(ctx, accountID, d.SerialNumber, d.ID); err != nil {
			return d, err
		}
	}
	d.UpdatedAt = tx.Now
	_, err = tx.exec(ctx, `UPDATE devices SET serial_number = ?, name = ?, site = ?, timezone = ?, direction_mode = ?, updated_at = ?
		WHERE id = ?`, d.SerialNumber, d.Name, d.Site, d.Timezone, directionArg(d.DirectionMode), micros(d.UpdatedAt), d.ID)
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

// ListDevices returns one page of the account's devices.
func (s *Store) ListDevices(ctx context.Context, accountID string, p ListParams) (Page[attendance.Device], error) {
	return listQuery(ctx, s.reader(), "devices", deviceCols, accountID, p, scanDevice, deviceID)
}

// CountDevices counts the account's registered devices (the rate limit scales with it).
func (s *Store) CountDevices(ctx context.Context, accountID string) (int, error) {
	var n int
	err := s.reader().queryRow(ctx, `SELECT count(*) FROM devices WHERE account_id = ? AND deleted_at IS NULL`, accountID).Scan(&n)
	return n, err
}
