package cache

// Cache state as ordered strings, for comparing in tests.

// lruString lists the evictable blocks from most to least recently used.
func (c *Cache) lruString() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := ""
	for e := c.lru.Front(); e != nil; e = e.Next() {
		if s != "" {
			s += " "
		}
		s += e.Value.(*block).k.String()
	}
	return s
}

// diskString lists the disk tier's written blocks from most to least recently used.
func (c *Cache) diskString() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := ""
	for e := c.diskState.lru.Front(); e != nil; e = e.Next() {
		if s != "" {
			s += " "
		}
		s += e.Value.(*diskEntry).k.String()
	}
	return s
}
