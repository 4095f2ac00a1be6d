package store

import "time"

// SetListenCheck shortens how long a listening signal connection stays quiet
// before it is pinged, until the returned function restores it.
func SetListenCheck(d time.Duration) (restore func()) {
	old := listenCheck
	listenCheck = d
	return func() { listenCheck = old }
}
