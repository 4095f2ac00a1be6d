package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/punchconnect/punchconnect/internal/attendance"
)

// UpsertDeviceUsers records what a device reports of its users. A record
// with only Templates set (a template line) adds to the count of a user
// without touching the rest.
func (tx *Tx) UpsertDeviceUsers(ctx context.Context, users []attendance.DeviceUser) error {
	for _, u := range users {
		_, err := tx.exec(ctx, `INSERT INTO device_users (device_id, pin, name, name_raw, privilege, card, has_password, user_group, templates, updated_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
			ON CONFLICT (device_id, pin) DO UPDATE SET name = excluded.name, name_raw = excluded.name_raw,
				privilege = excluded.privilege, card = excluded.card, has_password = excluded.has_password,
				user_group = excluded.user_group, updated_at = excluded.updated_at`,
			u.DeviceID, u.PIN, u.Name, u.NameRaw, intArg(u.Privilege), u.Card, u.HasPassword, u.Group, u.Templates, micros(u.UpdatedAt))
		if err != nil {
			return fmt.Errorf("upsert device user: %w", err)
		}
	}
	return nil
}

// CountDeviceTemplates adds n biometric templates to a device user, creating
// a bare record when the device reported templates before the user.
func (tx *Tx) CountDeviceTemplates(ctx context.Context, deviceID, pin string, n int, at time.Time) error {
	_, err := tx.exec(ctx, `INSERT INTO device_users (device_id, pin, templates, updated_at) VALUES (?, ?, ?, ?)
		ON CONFLICT (device_id, pin) DO UPDATE SET templates = device_users.templates + excluded.templates, updated_at = excluded.updated_at`,
		deviceID, pin, n, micros(at))
	return err
}

// DeviceUserSorts are the fields device-user lists sort by.
var DeviceUserSorts = []Column{{Name: "pin", Kind: KindText, Expr: "u.pin"}, {Name: "updated_at", Kind: KindInt, Expr: "u.updated_at"}}

// ListDeviceUsers returns one page of the users a device of the account reported.
func (s *Store) ListDeviceUsers(ctx context.Context, accountID, deviceID string, p ListParams) (Page[attendance.DeviceUser], error) {
	l := listSQL{
		from: `device_users u JOIN devices d ON d.id = u.device_id
			LEFT JOIN employees e ON e.account_id = d.account_id AND e.badge_number = u.pin AND e.deleted_at IS NULL`,
		cols:      "u.device_id, u.pin, u.name, u.name_raw, u.privilege, u.card, u.has_password, u.user_group, u.templates, u.updated_at, e.id",
		tieExpr:   "u.pin",
		tieKind:   KindText,
		countFrom: "device_users u JOIN devices d ON d.id = u.device_id",
		where:     []string{"d.account_id = ?", "u.device_id = ?"},
		args:      []any{accountID, deviceID},
	}
	return listQuery(ctx, s.reader(), l, p, func(r scanner) (attendance.DeviceUser, error) {
		var u attendance.DeviceUser
		var priv sql.NullInt64
		var emp sql.NullString
		var updated int64
		err := r.Scan(&u.DeviceID, &u.PIN, &u.Name, &u.NameRaw, &priv, &u.Card, &u.HasPassword, &u.Group, &u.Templates, &updated, &emp)
		u.Privilege, u.EmployeeID, u.UpdatedAt = intPtr(priv), stringPtr(emp), fromMicros(updated)
		return u, err
	})
}

// KeepUpload stores a device body we acknowledge without processing it
// (photos, operation logs, tables we do not use, bodies we cannot parse), for
// inspection.
func (tx *Tx) KeepUpload(ctx context.Context, accountID, deviceID, kind, query string, body []byte, note string) error {
	_, err := tx.exec(ctx, `INSERT INTO device_uploads (account_id, device_id, kind, query, body, note, received_at) VALUES (?, ?, ?, ?, ?, ?, ?)`,
		accountID, deviceID, kind, query, body, note, micros(tx.Now))
	return err
}

// CountKeptUploads counts the uploads kept for a device (tests and operators).
func (s *Store) CountKeptUploads(ctx context.Context, deviceID, kind string) (int, error) {
	var n int
	err := s.reader().queryRow(ctx, `SELECT count(*) FROM device_uploads WHERE device_id = ? AND kind = ?`, deviceID, kind).Scan(&n)
	return n, err
}

// SeeUnclaimed records contact from a serial no account has registered. It
// writes at most every minTouch per serial, so a chatty device costs little.
func (tx *Tx) SeeUnclaimed(ctx context.Context, serial, ip, pushVersion, deviceType string, minTouch time.Duration) error {
	_, err := tx.exec(ctx, `INSERT INTO unclaimed_devices (serial_number, first_seen_at, last_seen_at, last_ip, requests, push_version, device_type)
		VALUES (?, ?, ?, ?, 1, ?, ?)
		ON CONFLICT (serial_number) DO UPDATE SET last_seen_at = excluded.last_seen_at, last_ip = excluded.last_ip,
			requests = unclaimed_devices.requests + 1,
			push_version = CASE WHEN excluded.push_version = '' THEN unclaimed_devices.push_version ELSE excluded.push_version END,
			device_type = CASE WHEN excluded.device_type = '' THEN unclaimed_devices.device_type ELSE excluded.device_type END
		WHERE unclaimed_devices.last_seen_at < ? OR excluded.push_version <> '' OR excluded.device_type <> ''`,
		serial, micros(tx.Now), micros(tx.Now), ip, pushVersion, deviceType, micros(tx.Now.Add(-minTouch)))
	return err
}

// ErrHeldFull means the space for uploads of unclaimed serials is used up.
var ErrHeldFull = errors.New("held uploads are full")

// HoldUpload keeps an upload of an unclaimed serial, unless that serial
// already holds maxPerSerial bytes or all serials hold maxTotal.
func (tx *Tx) HoldUpload(ctx context.Context, h attendance.HeldUpload, maxPerSerial, maxTotal int64) error {
	var serialBytes, totalBytes int64
	if err := tx.queryRow(ctx, `SELECT COALESCE(SUM(held_bytes), 0), COALESCE(MAX(CASE WHEN serial_number = ? THEN held_bytes END), 0) FROM unclaimed_devices`,
		h.SerialNumber).Scan(&totalBytes, &serialBytes); err != nil {
		return err
	}
	size := int64(len(h.Body))
	if serialBytes+size > maxPerSerial || totalBytes+size > maxTotal {
		return ErrHeldFull
	}
	if _, err := tx.exec(ctx, `INSERT INTO held_uploads (serial_number, kind, query, body, remote_ip, received_at) VALUES (?, ?, ?, ?, ?, ?)`,
		h.SerialNumber, h.Kind, h.Query, h.Body, h.RemoteIP, micros(tx.Now)); err != nil {
		return err
	}
	_, err := tx.exec(ctx, `UPDATE unclaimed_devices SET held_uploads = held_uploads + 1, held_bytes = held_bytes + ? WHERE serial_number = ?`, size, h.SerialNumber)
	return err
}

// ClaimHeld takes the uploads held for serial, oldest first, and forgets the
// serial as unclaimed: the caller processes them for the account that has
// just registered it, in the same transaction.
func (tx *Tx) ClaimHeld(ctx context.Context, serial string) ([]attendance.HeldUpload, error) {
	rows, err := tx.query(ctx, `SELECT id, serial_number, kind, query, body, remote_ip, received_at FROM held_uploads
		WHERE serial_number = ? ORDER BY id`, serial)
	if err != nil {
		return nil, err
	}
	var out []attendance.HeldUpload
	for rows.Next() {
		var h attendance.HeldUpload
		var received int64
		if err := rows.Scan(&h.ID, &h.SerialNumber, &h.Kind, &h.Query, &h.Body, &h.RemoteIP, &received); err != nil {
			rows.Close()
			return nil, err
		}
		h.ReceivedAt = fromMicros(received)
		out = append(out, h)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	if _, err := tx.exec(ctx, `DELETE FROM held_uploads WHERE serial_number = ?`, serial); err != nil {
		return nil, err
	}
	_, err = tx.exec(ctx, `DELETE FROM unclaimed_devices WHERE serial_number = ?`, serial)
	return out, err
}

// UnclaimedDevices lists the serials no account has registered, most recently seen first.
func (s *Store) UnclaimedDevices(ctx context.Context) ([]attendance.UnclaimedDevice, error) {
	rows, err := s.reader().query(ctx, `SELECT serial_number, first_seen_at, last_seen_at, last_ip, requests, push_version, device_type,
		held_uploads, held_bytes FROM unclaimed_devices ORDER BY last_seen_at DESC`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []attendance.UnclaimedDevice
	for rows.Next() {
		var u attendance.UnclaimedDevice
		var first, last int64
		if err := rows.Scan(&u.SerialNumber, &first, &last, &u.LastIP, &u.Requests, &u.PushVersion, &u.DeviceType, &u.HeldUploads, &u.HeldBytes); err != nil {
			return nil, err
		}
		u.FirstSeenAt, u.LastSeenAt = fromMicros(first), fromMicros(last)
		out = append(out, u)
	}
	return out, rows.Err()
}
