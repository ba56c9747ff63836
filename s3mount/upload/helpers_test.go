package upload

import "runtime"

func runtimeGosched() { runtime.Gosched() }
