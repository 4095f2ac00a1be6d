package attendance

// DeviceInput is a create or update of a device. Only Set fields change.
type DeviceInput struct {
	SerialNumber  Field[string]
	Name          Field[string]
	Site          Field[string]
	Timezone      Field[string]
	DirectionMode Field[*DirectionMode] // Set with nil: follow the account setting
}

// Validate checks and normalizes the input. On create, serial_number is required.
func (in *DeviceInput) Validate(create bool) error {
	if create && !in.SerialNumber.Set {
		return Errorf(CodeMissingParameter, "serial_number", "serial_number is required: it is printed on the device and sent as SN= by its firmware.")
	}
	if in.SerialNumber.Set {
		s, err := NormalizeSerial("serial_number", in.SerialNumber.Value)
		if err != nil {
			return err
		}
		in.SerialNumber.Value = s
	}
	if in.Name.Set {
		if err := ValidateText("name", in.Name.Value, MaxNameLength); err != nil {
			return err
		}
	}
	if in.Site.Set {
		if err := ValidateText("site", in.Site.Value, MaxSiteLength); err != nil {
			return err
		}
	}
	if in.Timezone.Set {
		if _, err := LoadTimezone("timezone", in.Timezone.Value); err != nil {
			return err
		}
	}
	if in.DirectionMode.Set && in.DirectionMode.Value != nil {
		if _, err := ParseDirectionMode("direction_mode", string(*in.DirectionMode.Value)); err != nil {
			return err
		}
	}
	return nil
}

// Apply copies the set fields onto d.
func (in *DeviceInput) Apply(d *Device) {
	if in.SerialNumber.Set {
		d.SerialNumber = in.SerialNumber.Value
	}
	if in.Name.Set {
		d.Name = in.Name.Value
	}
	if in.Site.Set {
		d.Site = in.Site.Value
	}
	if in.Timezone.Set {
		d.Timezone = in.Timezone.Value
	}
	if in.DirectionMode.Set {
		d.DirectionMode = in.DirectionMode.Value
	}
}

// EmployeeInput is a create, update or upsert of an employee.
type EmployeeInput struct {
	BadgeNumber Field[string]
	Name        Field[string]
	ExternalID  Field[*string]
	Email       Field[*string]
	Department  Field[*string]
	CardNumber  Field[*string]
	Active      Field[bool]
	Metadata    Field[map[string]string]
}

// Validate checks the input. On create, badge_number is required.
func (in *EmployeeInput) Validate(create bool) error {
	if create && !in.BadgeNumber.Set {
		return Errorf(CodeMissingParameter, "badge_number", "badge_number is required: it is the PIN the employee is enrolled under on the devices.")
	}
	if in.BadgeNumber.Set {
		if err := ValidateBadge("badge_number", in.BadgeNumber.Value); err != nil {
			return err
		}
	}
	if in.Name.Set {
		if err := ValidateText("name", in.Name.Value, MaxNameLength); err != nil {
			return err
		}
	}
	for _, f := range []struct {
		param string
		field Field[*string]
		max   int
	}{
		{"external_id", in.ExternalID, MaxExternalIDLength},
		{"department", in.Department, MaxDepartmentLength},
		{"card_number", in.CardNumber, MaxCardNumberLength},
	} {
		if f.field.Set && f.field.Value != nil {
			if *f.field.Value == "" {
				return Errorf(CodeInvalidParameter, f.param, "%s must not be empty; send null to clear it.", f.param)
			}
			if err := ValidateText(f.param, *f.field.Value, f.max); err != nil {
				return err
			}
		}
	}
	if in.Email.Set && in.Email.Value != nil {
		if err := ValidateEmail("email", *in.Email.Value); err != nil {
			return err
		}
	}
	if in.Metadata.Set {
		if err := ValidateMetadata("metadata", in.Metadata.Value); err != nil {
			return err
		}
	}
	return nil
}

// Apply copies the set fields onto e.
func (in *EmployeeInput) Apply(e *Employee) {
	if in.BadgeNumber.Set {
		e.BadgeNumber = in.BadgeNumber.Value
	}
	if in.Name.Set {
		e.Name = in.Name.Value
	}
	if in.ExternalID.Set {
		e.ExternalID = in.ExternalID.Value
	}
	if in.Email.Set {
		e.Email = in.Email.Value
	}
	if in.Department.Set {
		e.Department = in.Department.Value
	}
	if in.CardNumber.Set {
		e.CardNumber = in.CardNumber.Value
	}
	if in.Active.Set {
		e.Active = in.Active.Value
	}
	if in.Metadata.Set {
		e.Metadata = in.Metadata.Value
	}
}

// SettingsInput is an update of the account settings.
type SettingsInput struct {
	Timezone           Field[string]
	DirectionMode      Field[string]
	DayStart           Field[string]
	DedupWindowSeconds Field[int]
}

// ApplyTo validates the input and applies it to s.
func (in *SettingsInput) ApplyTo(s *Settings) error {
	if in.Timezone.Set {
		if _, err := LoadTimezone("timezone", in.Timezone.Value); err != nil {
			return err
		}
		s.Timezone = in.Timezone.Value
	}
	if in.DirectionMode.Set {
		m, err := ParseDirectionMode("direction_mode", in.DirectionMode.Value)
		if err != nil {
			return err
		}
		s.DirectionMode = m
	}
	if in.DayStart.Set {
		m, err := ParseDayStart("day_start", in.DayStart.Value)
		if err != nil {
			return err
		}
		s.DayStartMinutes = m
	}
	if in.DedupWindowSeconds.Set {
		v := in.DedupWindowSeconds.Value
		if v < 0 || v > MaxDedupWindowSeconds {
			return Errorf(CodeInvalidParameter, "dedup_window_seconds", "dedup_window_seconds must be between 0 (off) and %d.", MaxDedupWindowSeconds)
		}
		s.DedupWindowSeconds = v
	}
	return nil
}
