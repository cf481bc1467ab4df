package pickle

// depthExceeds reports whether a depth-first walk of v, which visits each container
// and object once and the children of each in the order pickling writes them (see
// child), descends through more than max of them at once. It does not recurse.
func depthExceeds(v any, max int) bool {
	type frame struct {
		node any
		next int
	}
	visited := make(map[any]struct{})
	var stack []frame
	enter := func(x any) {
		if !isNode(x) {
			return
		}
		if _, seen := visited[x]; seen {
			return
		}
		visited[x] = struct{}{}
		stack = append(stack, frame{node: x})
	}
	enter(v)
	for len(stack) > 0 {
		if len(stack) > max {
			return true
		}
		f := &stack[len(stack)-1]
		c, ok := child(f.node, f.next)
		if !ok {
			stack = stack[:len(stack)-1]
			continue
		}
		f.next++
		enter(c)
	}
	return false
}

// isNode reports whether v is a non-nil container or object of the value model.
func isNode(v any) bool {
	switch x := v.(type) {
	case *Tuple:
		return x != nil
	case *List:
		return x != nil
	case *Dict:
		return x != nil
	case *Set:
		return x != nil
	case *FrozenSet:
		return x != nil
	case *Object:
		return x != nil
	case *ByteArray:
		return x != nil
	}
	return false
}

// child returns the i-th value held by node in the order CPython's pickler writes
// them: the items of a tuple, list, set or frozenset; key then value for each dict
// item; for an object its callable, arguments, keyword arguments, the items APPENDS,
// SETITEMS and ADDITEMS add, and last its BUILD state.
func child(node any, i int) (any, bool) {
	switch x := node.(type) {
	case *Tuple:
		if i < len(x.Items) {
			return x.Items[i], true
		}
	case *List:
		if i < len(x.Items) {
			return x.Items[i], true
		}
	case *Dict:
		if i < 2*len(x.t.keys) {
			if i%2 == 0 {
				return x.t.keys[i/2], true
			}
			return x.t.vals[i/2], true
		}
	case *Set:
		if i < len(x.t.keys) {
			return x.t.keys[i], true
		}
	case *FrozenSet:
		if i < len(x.t.keys) {
			return x.t.keys[i], true
		}
	case *Object:
		return objectChild(x, i)
	}
	return nil, false
}

func objectChild(o *Object, i int) (any, bool) {
	switch i {
	case 0:
		return o.Callable, true
	case 1:
		return o.Args, true
	case 2:
		return o.Kwargs, true
	}
	i -= 3
	if i < len(o.ListItems) {
		return o.ListItems[i], true
	}
	i -= len(o.ListItems)
	if i < 2*len(o.DictItems) {
		if i%2 == 0 {
			return o.DictItems[i/2].Key, true
		}
		return o.DictItems[i/2].Value, true
	}
	i -= 2 * len(o.DictItems)
	if i < len(o.SetItems) {
		return o.SetItems[i], true
	}
	i -= len(o.SetItems)
	if i == 0 && o.HasState {
		return o.State, true
	}
	return nil, false
}
