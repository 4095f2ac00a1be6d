package store

import (
	"reflect"
	"testing"

	"github.com/punchconnect/punchconnect/internal/attendance"
)

// TestCloneDeviceSharesNothing fills every pointer, slice and map of a
// Device (also ones added later) and checks that the clone has its own.
func TestCloneDeviceSharesNothing(t *testing.T) {
	var d attendance.Device
	fill(reflect.ValueOf(&d).Elem())
	c := cloneDevice(d)
	if !reflect.DeepEqual(c, d) {
		t.Fatalf("clone differs:\n%+v\n%+v", c, d)
	}
	shared(t, "Device", reflect.ValueOf(d), reflect.ValueOf(c))
}

// fill gives every reference in v (a settable struct) a value.
func fill(v reflect.Value) {
	for i := range v.NumField() {
		f := v.Field(i)
		switch f.Kind() {
		case reflect.Pointer:
			f.Set(reflect.New(f.Type().Elem()))
		case reflect.Slice:
			f.Set(reflect.MakeSlice(f.Type(), 1, 1))
		case reflect.Map:
			m := reflect.MakeMap(f.Type())
			m.SetMapIndex(reflect.Zero(f.Type().Key()), reflect.Zero(f.Type().Elem()))
			f.Set(m)
		case reflect.Struct:
			if f.Type().PkgPath() != "time" {
				fill(f)
			}
		}
	}
}

func shared(t *testing.T, path string, a, b reflect.Value) {
	t.Helper()
	for i := range a.NumField() {
		name := path + "." + a.Type().Field(i).Name
		fa, fb := a.Field(i), b.Field(i)
		switch fa.Kind() {
		case reflect.Pointer, reflect.Slice, reflect.Map:
			if fa.Pointer() == fb.Pointer() {
				t.Errorf("%s is shared by the clone: add it to cloneDevice", name)
			}
		case reflect.Struct:
			if fa.Type().PkgPath() != "time" {
				shared(t, name, fa, fb)
			}
		}
	}
}
