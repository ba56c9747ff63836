package cache

import "runtime"

// waitABit yields while a test polls for a state another goroutine will reach; tests never assert durations.
func waitABit() { runtime.Gosched() }
