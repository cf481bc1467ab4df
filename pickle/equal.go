package pickle

import (
	"bytes"
	"math"
	"math/big"
	"reflect"
)

// Equal reports whether a and b are the same object graph: equal scalars, and
// containers and objects that correspond one to one. Two graphs are equal when there
// is a bijection between their containers and objects that maps one root to the other
// and under which every container holds equal values in the same order (dicts and sets
// compare item by item in order, since the order is part of the value and of the bytes
// written), so shared references and cycles must match too: [x, x] differs from
// [x, copy of x].
//
// Scalars compare by value: ints by value whether int64 or *big.Int, floats bit for
// bit except that all NaNs are equal (so -0.0 differs from 0.0), bool differs from int.
// Values outside the value model are compared with reflect.DeepEqual.
//
// Equal does not recurse, so it handles graphs of any depth.
func Equal(a, b any) bool {
	e := equality{ab: make(map[any]any), ba: make(map[any]any)}
	e.push(a, b)
	for len(e.work) > 0 {
		p := e.work[len(e.work)-1]
		e.work = e.work[:len(e.work)-1]
		if !e.step(p.a, p.b) {
			return false
		}
	}
	return true
}

type pair struct{ a, b any }

type equality struct {
	ab, ba map[any]any // the bijection found so far
	work   []pair
}

func (e *equality) push(a, b any) { e.work = append(e.work, pair{a, b}) }

// match reports whether the nodes a and b may correspond and records the
// correspondence; first is true when they were not seen before.
func (e *equality) match(a, b any) (ok, first bool) {
	if m, seen := e.ab[a]; seen {
		return m == b, false
	}
	if _, seen := e.ba[b]; seen {
		return false, false
	}
	e.ab[a], e.ba[b] = b, a
	return true, true
}

func (e *equality) step(a, b any) bool {
	switch x := a.(type) {
	case nil:
		return b == nil
	case bool:
		y, ok := b.(bool)
		return ok && x == y
	case int64, *big.Int:
		return intEqual(x, b)
	case float64:
		y, ok := b.(float64)
		return ok && (math.Float64bits(x) == math.Float64bits(y) || (math.IsNaN(x) && math.IsNaN(y)))
	case string:
		y, ok := b.(string)
		return ok && x == y
	case []byte:
		y, ok := b.([]byte)
		return ok && bytes.Equal(x, y)
	case Global:
		y, ok := b.(Global)
		return ok && x == y
	case *ByteArray:
		y, ok := b.(*ByteArray)
		if !ok || (x == nil) != (y == nil) {
			return false
		}
		if x == nil {
			return true
		}
		m, first := e.match(x, y)
		return m && (!first || bytes.Equal(x.Data, y.Data))
	case *Tuple:
		y, ok := b.(*Tuple)
		if !ok || (x == nil) != (y == nil) {
			return false
		}
		if x == nil {
			return true
		}
		return e.items(x, y, x.Items, y.Items)
	case *List:
		y, ok := b.(*List)
		if !ok || (x == nil) != (y == nil) {
			return false
		}
		if x == nil {
			return true
		}
		return e.items(x, y, x.Items, y.Items)
	case *Dict:
		y, ok := b.(*Dict)
		if !ok || (x == nil) != (y == nil) {
			return false
		}
		if x == nil {
			return true
		}
		m, first := e.match(x, y)
		if !m || !first {
			return m
		}
		if len(x.t.keys) != len(y.t.keys) {
			return false
		}
		for i := range x.t.keys {
			e.push(x.t.keys[i], y.t.keys[i])
			e.push(x.t.vals[i], y.t.vals[i])
		}
		return true
	case *Set:
		y, ok := b.(*Set)
		if !ok || (x == nil) != (y == nil) {
			return false
		}
		if x == nil {
			return true
		}
		return e.items(x, y, x.t.keys, y.t.keys)
	case *FrozenSet:
		y, ok := b.(*FrozenSet)
		if !ok || (x == nil) != (y == nil) {
			return false
		}
		if x == nil {
			return true
		}
		return e.items(x, y, x.t.keys, y.t.keys)
	case *Object:
		y, ok := b.(*Object)
		if !ok || (x == nil) != (y == nil) {
			return false
		}
		if x == nil {
			return true
		}
		return e.object(x, y)
	}
	return reflect.DeepEqual(a, b)
}

// items matches the nodes a and b and queues their items pairwise. Items of a node
// seen before were queued when it was first seen.
func (e *equality) items(a, b any, xs, ys []any) bool {
	m, first := e.match(a, b)
	if !m || !first {
		return m
	}
	if len(xs) != len(ys) {
		return false
	}
	for i := range xs {
		e.push(xs[i], ys[i])
	}
	return true
}

func (e *equality) object(x, y *Object) bool {
	m, first := e.match(x, y)
	if !m || !first {
		return m
	}
	if x.Construct != y.Construct || x.HasState != y.HasState ||
		len(x.ListItems) != len(y.ListItems) || len(x.DictItems) != len(y.DictItems) ||
		len(x.SetItems) != len(y.SetItems) {
		return false
	}
	e.push(x.Callable, y.Callable)
	e.push(x.Args, y.Args)
	e.push(x.Kwargs, y.Kwargs)
	for i := range x.ListItems {
		e.push(x.ListItems[i], y.ListItems[i])
	}
	for i := range x.DictItems {
		e.push(x.DictItems[i].Key, y.DictItems[i].Key)
		e.push(x.DictItems[i].Value, y.DictItems[i].Value)
	}
	for i := range x.SetItems {
		e.push(x.SetItems[i], y.SetItems[i])
	}
	if x.HasState {
		e.push(x.State, y.State)
	}
	return true
}

// intEqual compares two ints of the model by value.
func intEqual(a, b any) bool {
	if x, ok := a.(int64); ok {
		if y, ok := b.(int64); ok {
			return x == y
		}
	}
	switch y := b.(type) {
	case int64, *big.Int:
		ba, bb := bigOf(a), bigOf(y)
		if ba == nil || bb == nil {
			return ba == bb
		}
		return ba.Cmp(bb) == 0
	}
	return false
}

func bigOf(v any) *big.Int {
	switch x := v.(type) {
	case int64:
		return big.NewInt(x)
	case *big.Int:
		return x
	}
	return nil
}
