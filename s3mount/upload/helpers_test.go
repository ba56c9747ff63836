package upload

import "time"

// pollPause is the pause between two polls of a condition the test waits for; it is no timing assertion
// (a test waits as long as the condition takes) but keeps the poll from starving the goroutines it waits for.
func pollPause() { time.Sleep(time.Millisecond) }
