package attendance

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"
)

// CommandKind is what a command asks of a device. The API takes only these
// typed commands: nothing a client sends reaches a device as a raw string.
type CommandKind string

// Command kinds (PRODUCT.md §6).
const (
	CommandSyncEmployees    CommandKind = "sync_employees"
	CommandSyncAllEmployees CommandKind = "sync_all_employees"
	CommandDeleteEmployees  CommandKind = "delete_employees"
	CommandUnlockDoor       CommandKind = "unlock_door"
	CommandReboot           CommandKind = "reboot"
	CommandSetTime          CommandKind = "set_time"
	CommandReupload         CommandKind = "reupload"
	CommandInfo             CommandKind = "info"
)

// CommandKinds lists every kind, in the order the docs give them.
var CommandKinds = []CommandKind{
	CommandSyncEmployees, CommandSyncAllEmployees, CommandDeleteEmployees, CommandUnlockDoor,
	CommandReboot, CommandSetTime, CommandReupload, CommandInfo,
}

// CommandStatus is where a command is in its life.
type CommandStatus string

// Command statuses: queued → sent → succeeded | failed | expired.
const (
	CommandQueued    CommandStatus = "queued"
	CommandSent      CommandStatus = "sent"
	CommandSucceeded CommandStatus = "succeeded"
	CommandFailed    CommandStatus = "failed"
	CommandExpired   CommandStatus = "expired"
)

// Terminal reports whether the status is final.
func (s CommandStatus) Terminal() bool {
	return s == CommandSucceeded || s == CommandFailed || s == CommandExpired
}

// Command sources: why a command exists.
const (
	CommandSourceAPI   = "api"
	CommandSourceBatch = "batch"
	CommandSourceAuto  = "auto" // automatic employee sync
)

// Event types of commands and batches.
const (
	EventCommandSucceeded = "command.succeeded"
	EventCommandFailed    = "command.failed"
	EventBatchCompleted   = "batch.completed"
)

// Command is one operation on one device. It is sent as one line per item
// (an employee to sync, say), and its counts say how the lines fared.
type Command struct {
	Seq          int64
	ID           string
	AccountID    string
	DeviceID     string
	BatchID      string
	Kind         CommandKind
	Payload      []byte // the typed input, as JSON
	Source       string
	Status       CommandStatus
	Total        int
	Succeeded    int
	Failed       int
	ReturnCode   *int   // the device's code for a one-line command, or the first failure's
	ErrorCode    string // why it failed, machine-readable
	ErrorMessage string
	CreatedAt    time.Time
	SentAt       time.Time
	CompletedAt  time.Time
	ExpiresAt    time.Time

	Errors []CommandItemError // failed items, when read for showing
}

// Pending is how many items have no answer yet.
func (c *Command) Pending() int { return c.Total - c.Succeeded - c.Failed }

// CommandItemError is an item the device refused.
type CommandItemError struct {
	Item       int
	Key        string // the badge number, for employee commands
	ReturnCode int
	Code       string
	Message    string
}

// CommandLine is one line of a command as the device gets it:
// C:<Seq>:<Text>.
type CommandLine struct {
	Seq        int64
	CommandSeq int64
	DeviceID   string
	Item       int
	Key        string
	Text       string
	Status     CommandStatus
	Attempts   int
	ReturnCode *int
	SentAt     time.Time
	AnsweredAt time.Time
}

// EmployeeRecord is an employee as sync_employees sends it to devices.
// Fields left out keep what the device has (or, for a new user, its
// defaults): a sync never clears what it does not know.
type EmployeeRecord struct {
	BadgeNumber string
	Name        Field[string]
	Card        Field[string]
	Privilege   Field[string] // "user" or "admin"
	Password    Field[string]
}

// Privileges a device user may have.
const (
	PrivilegeUser  = "user"
	PrivilegeAdmin = "admin"
)

// CommandInput is a command as a client asks for it.
type CommandInput struct {
	Kind      CommandKind
	Employees []EmployeeRecord // sync_employees
	Badges    []string         // delete_employees
	Seconds   int              // unlock_door
	Start     time.Time        // reupload
	End       time.Time        // reupload
	ExpiresAt time.Time        // zero: the default lifetime
}

// Limits of commands.
const (
	MaxCommandItems        = 5000
	DefaultCommandLifetime = 24 * time.Hour
	MaxCommandLifetime     = 30 * 24 * time.Hour
	MaxReuploadRange       = 400 * 24 * time.Hour
)

var (
	cardPattern     = regexp.MustCompile(`^[0-9A-Za-z]{1,32}$`)
	passwordPattern = regexp.MustCompile(`^[0-9]{1,8}$`)
)

// Validate checks a command's input; now bounds expires_at.
func (in *CommandInput) Validate(now time.Time) error {
	if !slices.Contains(CommandKinds, in.Kind) {
		names := make([]string, len(CommandKinds))
		for i, k := range CommandKinds {
			names[i] = string(k)
		}
		return Errorf(CodeUnknownCommand, "command", "%q is not a command. Send one of %s.", in.Kind, strings.Join(names, ", "))
	}
	if !in.ExpiresAt.IsZero() {
		if !in.ExpiresAt.After(now) {
			return Errorf(CodeInvalidParameter, "expires_at", "expires_at must be in the future.")
		}
		if in.ExpiresAt.Sub(now) > MaxCommandLifetime {
			return Errorf(CodeInvalidParameter, "expires_at", "expires_at may be at most 30 days ahead.")
		}
	}
	switch in.Kind {
	case CommandSyncEmployees:
		if len(in.Employees) == 0 {
			return Errorf(CodeMissingParameter, "payload.employees", "sync_employees needs payload.employees: the employees to write to the device, each with at least a badge_number.")
		}
		if len(in.Employees) > MaxCommandItems {
			return Errorf(CodeBatchTooLarge, "payload.employees", "At most %d employees per command; send several commands, or sync_all_employees.", MaxCommandItems)
		}
		seen := map[string]int{}
		for i, e := range in.Employees {
			p := fmt.Sprintf("payload.employees[%d].", i)
			if err := ValidateBadge(p+"badge_number", e.BadgeNumber); err != nil {
				return err
			}
			if j, ok := seen[e.BadgeNumber]; ok {
				return Errorf(CodeDuplicateInBatch, p+"badge_number", "Badge number %q is also at payload.employees[%d]; send each employee once.", e.BadgeNumber, j)
			}
			seen[e.BadgeNumber] = i
			if e.Name.Set {
				if err := ValidateText(p+"name", e.Name.Value, 100); err != nil {
					return err
				}
			}
			if e.Card.Set && e.Card.Value != "" && !cardPattern.MatchString(e.Card.Value) {
				return Errorf(CodeInvalidParameter, p+"card", "card must be 1 to 32 letters or digits, or \"\" to remove the card from the device.")
			}
			if e.Privilege.Set && e.Privilege.Value != PrivilegeUser && e.Privilege.Value != PrivilegeAdmin {
				return Errorf(CodeInvalidParameter, p+"privilege", "privilege must be \"user\" or \"admin\".")
			}
			if e.Password.Set && e.Password.Value != "" && !passwordPattern.MatchString(e.Password.Value) {
				return Errorf(CodeInvalidParameter, p+"password", "password must be 1 to 8 digits, or \"\" to remove it.")
			}
		}
	case CommandDeleteEmployees:
		if len(in.Badges) == 0 {
			return Errorf(CodeMissingParameter, "payload.badge_numbers", "delete_employees needs payload.badge_numbers: the badge numbers to remove from the device.")
		}
		if len(in.Badges) > MaxCommandItems {
			return Errorf(CodeBatchTooLarge, "payload.badge_numbers", "At most %d badge numbers per command.", MaxCommandItems)
		}
		seen := map[string]bool{}
		for i, b := range in.Badges {
			p := fmt.Sprintf("payload.badge_numbers[%d]", i)
			if err := ValidateBadge(p, b); err != nil {
				return err
			}
			if seen[b] {
				return Errorf(CodeDuplicateInBatch, p, "Badge number %q is given twice.", b)
			}
			seen[b] = true
		}
	case CommandUnlockDoor:
		if in.Seconds < 1 || in.Seconds > 254 {
			return Errorf(CodeInvalidParameter, "payload.seconds", "payload.seconds must be from 1 to 254: how long the door stays unlocked.")
		}
	case CommandReupload:
		switch {
		case in.Start.IsZero():
			return Errorf(CodeMissingParameter, "payload.start", "reupload needs payload.start and payload.end: the RFC 3339 instants of the range the device sends again.")
		case in.End.IsZero():
			return Errorf(CodeMissingParameter, "payload.end", "reupload needs payload.end, an RFC 3339 instant after payload.start.")
		case !in.End.After(in.Start):
			return Errorf(CodeInvalidParameter, "payload.end", "payload.end must be after payload.start.")
		case in.End.Sub(in.Start) > MaxReuploadRange:
			return Errorf(CodeInvalidParameter, "payload.end", "One reupload covers at most 400 days.")
		}
	}
	return nil
}

// CommandFailure describes a device's return code (PUSH protocol appendix 1).
func CommandFailure(code int) (string, string) {
	switch code {
	case -1:
		return "parameter_error", "The device rejected a parameter of the command (-1)."
	case -2:
		return "photo_size_mismatch", "The photo data did not match its declared size (-2)."
	case -3:
		return "device_read_write_error", "The device could not read or write its storage (-3)."
	case -9:
		return "template_size_mismatch", "The template data did not match its declared size (-9)."
	case -10:
		return "user_not_found", "The badge number does not exist on the device (-10)."
	case -11, -12:
		return "invalid_template", fmt.Sprintf("The fingerprint template was not accepted (%d).", code)
	case -1001:
		return "device_full", "The device has reached its capacity (-1001): delete users or records on it first."
	case -1002, -1004:
		return "not_supported", fmt.Sprintf("The device does not support this command (%d): its model or firmware lacks it.", code)
	case -1003:
		return "device_timeout", "The device timed out running the command (-1003)."
	case -1005:
		return "device_busy", "The device was busy (-1005); send the command again later."
	case -1006:
		return "data_too_long", "The data was too long for the device (-1006)."
	case -1007:
		return "device_memory_error", "The device reported a memory error (-1007)."
	case -1008:
		return "server_data_error", "The device could not fetch the data the command needs (-1008)."
	}
	return "device_error", fmt.Sprintf("The device answered with error code %d.", code)
}

// Counts tally a command's items or a batch's devices by outcome.
type Counts struct {
	Total     int
	Succeeded int
	Failed    int
	Pending   int
}

// Batch is one operation fanned out to many devices: a command per device.
type Batch struct {
	ID          string
	AccountID   string
	Kind        CommandKind
	Payload     []byte
	Target      []byte // how the devices were chosen, as JSON
	Devices     int
	CreatedAt   time.Time
	CompletedAt time.Time

	Commands []Command // per device, when read for showing
}
