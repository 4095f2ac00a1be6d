package httpapi

import (
	"encoding/json"
	"fmt"
	"net/http"

	"github.com/punchconnect/punchconnect/internal/attendance"
	"github.com/punchconnect/punchconnect/internal/commands"
	"github.com/punchconnect/punchconnect/internal/id"
	"github.com/punchconnect/punchconnect/internal/ingest"
	"github.com/punchconnect/punchconnect/internal/store"
)

// MaxEmployeeBatch is the most employees one POST /v1/employees/batch takes.
const MaxEmployeeBatch = 5000

var employeeList = listSpec{sorts: store.EmployeeSorts, filters: store.EmployeeFilters}

var employeeReadOnly = []string{"id", "object", "created_at", "updated_at"}

// readEmployee reads the employee fields of o.
func readEmployee(o *object, create bool) (attendance.EmployeeInput, error) {
	var in attendance.EmployeeInput
	o.str("badge_number", &in.BadgeNumber)
	o.str("name", &in.Name)
	o.nullableStr("external_id", &in.ExternalID)
	o.nullableStr("email", &in.Email)
	o.nullableStr("department", &in.Department)
	o.nullableStr("card_number", &in.CardNumber)
	o.boolean("active", &in.Active)
	o.stringMap("metadata", &in.Metadata)
	o.readOnly(employeeReadOnly...)
	if err := o.done(); err != nil {
		return in, err
	}
	return in, prefixParam(in.Validate(create), o.prefix)
}

func decodeEmployee(body []byte, create bool) (attendance.EmployeeInput, error) {
	o, err := parseBody(body)
	if err != nil {
		return attendance.EmployeeInput{}, err
	}
	return readEmployee(o, create)
}

func (s *Server) createEmployee(c *call) error {
	in, err := decodeEmployee(c.body, true)
	if err != nil {
		return err
	}
	return s.mutate(c, http.StatusCreated, func(tx *store.Tx) (any, error) {
		e, err := tx.CreateEmployee(c.ctx(), c.acct.ID, in)
		if err != nil {
			return nil, err
		}
		if err := commands.AutoSync(c.ctx(), tx, c.acct, []commands.EmployeeChange{{BadgeNumber: e.BadgeNumber, Employee: &e}}); err != nil {
			return nil, err
		}
		return one[employeeView]{viewEmployee(e)}, s.releaseHeld(c, tx, []string{e.BadgeNumber})
	})
}

func (s *Server) getEmployee(c *call) error {
	empID, err := pathID(c, id.Employee, "employee")
	if err != nil {
		return err
	}
	e, err := s.store.Employee(c.ctx(), c.acct.ID, empID)
	if err != nil {
		return err
	}
	return c.json(http.StatusOK, one[employeeView]{viewEmployee(e)})
}

func (s *Server) listEmployees(c *call) error {
	lr, err := parseList(c.r.URL.Query(), employeeList)
	if err != nil {
		return err
	}
	page, err := s.store.ListEmployees(c.ctx(), c.acct.ID, lr.params)
	if err != nil {
		return err
	}
	return c.json(http.StatusOK, listOf(lr, page, viewEmployee))
}

func (s *Server) updateEmployee(c *call) error {
	empID, err := pathID(c, id.Employee, "employee")
	if err != nil {
		return err
	}
	in, err := decodeEmployee(c.body, false)
	if err != nil {
		return err
	}
	return s.mutate(c, http.StatusOK, func(tx *store.Tx) (any, error) {
		var before attendance.Employee
		if c.acct.Settings.AutoSyncEmployees {
			var err error
			if before, err = tx.Employee(c.ctx(), c.acct.ID, empID); err != nil {
				return nil, err
			}
		}
		e, err := tx.UpdateEmployee(c.ctx(), c.acct.ID, empID, in)
		if err != nil {
			return nil, err
		}
		if c.acct.Settings.AutoSyncEmployees && commands.Changed(before, e) {
			ch := commands.EmployeeChange{BadgeNumber: e.BadgeNumber, Employee: &e, OldBadge: before.BadgeNumber}
			if err := commands.AutoSync(c.ctx(), tx, c.acct, []commands.EmployeeChange{ch}); err != nil {
				return nil, err
			}
		}
		if in.BadgeNumber.Set {
			err = s.releaseHeld(c, tx, []string{e.BadgeNumber})
		}
		return one[employeeView]{viewEmployee(e)}, err
	})
}

func (s *Server) deleteEmployee(c *call) error {
	empID, err := pathID(c, id.Employee, "employee")
	if err != nil {
		return err
	}
	return s.mutate(c, http.StatusOK, func(tx *store.Tx) (any, error) {
		var before attendance.Employee
		if c.acct.Settings.AutoSyncEmployees {
			var err error
			if before, err = tx.Employee(c.ctx(), c.acct.ID, empID); err != nil {
				return nil, err
			}
		}
		if err := tx.DeleteEmployee(c.ctx(), c.acct.ID, empID); err != nil {
			return nil, err
		}
		if c.acct.Settings.AutoSyncEmployees {
			if err := commands.AutoSync(c.ctx(), tx, c.acct, []commands.EmployeeChange{{BadgeNumber: before.BadgeNumber}}); err != nil {
				return nil, err
			}
		}
		return one[deletedView]{deletedView{ID: empID, Object: "employee", Deleted: true}}, nil
	})
}

// batchItem is one entry of the employee batch answer.
type batchItem struct {
	Index    int           `json:"index"`
	Status   string        `json:"status"`
	Employee *employeeView `json:"employee,omitempty"`
	Error    *errorBody    `json:"error,omitempty"`
}

type batchSummary struct {
	Created int `json:"created"`
	Updated int `json:"updated"`
	Errors  int `json:"errors"`
}

type batchResponse struct {
	Data    []batchItem  `json:"data"`
	Summary batchSummary `json:"summary"`
}

// batchEmployees upserts up to MaxEmployeeBatch employees by badge number.
// Each item succeeds or fails alone; the answer lists every item in order.
func (s *Server) batchEmployees(c *call) error {
	o, err := parseBody(c.body)
	if err != nil {
		return err
	}
	raw, ok := o.array("employees")
	if err := o.done(); err != nil {
		return err
	}
	if !ok {
		return attendance.Errorf(attendance.CodeMissingParameter, "employees",
			`employees is required: an array of employee objects, such as {"employees": [{"badge_number": "1042", "name": "Sarah Chen"}]}.`)
	}
	if len(raw) > MaxEmployeeBatch {
		return attendance.Errorf(attendance.CodeBatchTooLarge, "employees",
			"A batch holds at most %d employees; this one has %d. Split it into several calls.", MaxEmployeeBatch, len(raw))
	}

	items := make([]batchItem, len(raw))
	var valid []attendance.EmployeeInput
	var validIndex []int
	for i, r := range raw {
		items[i].Index = i
		in, err := decodeBatchItem(r, i)
		if err != nil {
			items[i].Status = "error"
			items[i].Error = s.itemError(err)
			continue
		}
		valid = append(valid, in)
		validIndex = append(validIndex, i)
	}
	return s.mutate(c, http.StatusOK, func(tx *store.Tx) (any, error) {
		results, err := tx.UpsertEmployees(c.ctx(), c.acct.ID, valid)
		if err != nil {
			return nil, err
		}
		out := batchResponse{Data: make([]batchItem, len(items))}
		copy(out.Data, items)
		for j, r := range results {
			item := &out.Data[validIndex[j]]
			switch {
			case r.Err != nil:
				item.Status = "error"
				item.Error = s.itemError(prefixParam(r.Err, fmt.Sprintf("employees[%d].", validIndex[j])))
			case r.Created:
				item.Status = "created"
			default:
				item.Status = "updated"
			}
			if r.Err == nil {
				v := viewEmployee(r.Employee)
				item.Employee = &v
			}
		}
		var badges []string
		var changes []commands.EmployeeChange
		for _, r := range results {
			if r.Err == nil && r.Created {
				badges = append(badges, r.Employee.BadgeNumber)
			}
			if r.Err == nil && (r.Created || commands.Changed(r.Previous, r.Employee)) {
				e := r.Employee
				changes = append(changes, commands.EmployeeChange{BadgeNumber: e.BadgeNumber, Employee: &e})
			}
		}
		if err := commands.AutoSync(c.ctx(), tx, c.acct, changes); err != nil {
			return nil, err
		}
		if err := s.releaseHeld(c, tx, badges); err != nil {
			return nil, err
		}
		for _, item := range out.Data {
			switch item.Status {
			case "created":
				out.Summary.Created++
			case "updated":
				out.Summary.Updated++
			default:
				out.Summary.Errors++
			}
		}
		return out, nil
	})
}

func decodeBatchItem(raw json.RawMessage, i int) (attendance.EmployeeInput, error) {
	o, err := parseObject(raw, fmt.Sprintf("employees[%d].", i))
	if err != nil {
		return attendance.EmployeeInput{}, err
	}
	return readEmployee(o, true)
}

// prefixParam puts prefix before the parameter an error names.
func prefixParam(err error, prefix string) error {
	e, ok := attendance.AsError(err)
	if !ok || e.Param == "" || prefix == "" {
		return err
	}
	p := *e
	p.Param = prefix + e.Param
	return &p
}

// itemError renders the error of one batch item.
func (s *Server) itemError(err error) *errorBody {
	e, ok := attendance.AsError(err)
	if !ok {
		e = attendance.Errorf(attendance.CodeInternalError, "", "This item could not be processed.")
	}
	_, body := s.errorObject(e, "")
	return &body
}

// releaseHeld delivers the punches held back because these badges were not
// registered, now that they are — in the registering transaction.
func (s *Server) releaseHeld(c *call, tx *store.Tx, badges []string) error {
	n, err := ingest.ReleaseBadges(c.ctx(), tx, c.acct.ID, badges)
	if n > 0 {
		s.log.InfoContext(c.ctx(), "released punches held for newly registered badges", "account_id", c.acct.ID, "punches", n)
	}
	return err
}
