package leader

import "sync"

// ring keeps the latest values added, oldest first, at most size of them;
// it is safe for concurrent use. The decision log and the capacity history
// are rings.
type ring[T any] struct {
	mu   sync.Mutex
	list []T
}

// add records v, dropping the oldest values beyond size.
func (r *ring[T]) add(v T, size int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.list = append(r.list, v)
	if len(r.list) > size {
		r.list = append(r.list[:0:0], r.list[len(r.list)-size:]...)
	}
}

// all returns a copy of the values kept, oldest first.
func (r *ring[T]) all() []T {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]T{}, r.list...)
}
