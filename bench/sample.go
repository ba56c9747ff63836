package main

import (
	"bufio"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// vmHWM returns the peak resident set size of a process in bytes, from /proc/PID/status.
func vmHWM(pid int) (int64, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return -1, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
			fields := strings.Fields(rest)
			if len(fields) != 2 || fields[1] != "kB" {
				return -1, fmt.Errorf("pid %d: unexpected VmHWM line %q", pid, sc.Text())
			}
			kb, err := strconv.ParseInt(fields[0], 10, 64)
			if err != nil {
				return -1, err
			}
			return kb << 10, nil
		}
	}
	return -1, fmt.Errorf("pid %d: no VmHWM in /proc status", pid)
}

// usedBytes is the space in use on the file system holding path.
func usedBytes(path string) (int64, error) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(path, &st); err != nil {
		return 0, err
	}
	return int64(st.Blocks-st.Bfree) * st.Bsize, nil
}

// diskSampler follows the space used on a set of file systems every interval, from start to stop.
type diskSampler struct {
	paths    []string
	interval time.Duration

	stopc chan struct{}
	done  chan struct{}

	mu        sync.Mutex // guards the fields below
	base      []int64
	peak      []int64
	last      []int64
	sampleErr error
}

// startDiskSampler records the current usage of each path as its baseline and samples until stop.
func startDiskSampler(interval time.Duration, paths ...string) *diskSampler {
	s := &diskSampler{paths: paths, interval: interval, stopc: make(chan struct{}), done: make(chan struct{}),
		base: make([]int64, len(paths)), peak: make([]int64, len(paths)), last: make([]int64, len(paths))}
	for i, p := range paths {
		u, err := usedBytes(p)
		if err != nil {
			s.sampleErr = err
		}
		s.base[i], s.peak[i], s.last[i] = u, u, u
	}
	go s.loop()
	return s
}

// loop samples every interval until stop.
func (s *diskSampler) loop() {
	defer close(s.done)
	t := time.NewTicker(s.interval)
	defer t.Stop()
	for {
		s.sample()
		select {
		case <-s.stopc:
			return
		case <-t.C:
		}
	}
}

// sample records the current usage of every path and raises the peaks.
func (s *diskSampler) sample() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, p := range s.paths {
		u, err := usedBytes(p)
		if err != nil {
			s.sampleErr = err
			continue
		}
		s.last[i] = u
		s.peak[i] = max(s.peak[i], u)
	}
}

// stop takes a last sample and returns, per path, the peak and final usage above the baseline.
func (s *diskSampler) stop() (peak, after []int64, err error) {
	close(s.stopc)
	<-s.done
	s.sample()
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := range s.paths {
		peak = append(peak, s.peak[i]-s.base[i])
		after = append(after, s.last[i]-s.base[i])
	}
	return peak, after, s.sampleErr
}
