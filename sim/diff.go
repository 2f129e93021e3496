package sim

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/hashicorp/nomad/api"
)

// Diff types, as Nomad names them.
const (
	diffAdded   = "Added"
	diffDeleted = "Deleted"
	diffEdited  = "Edited"
	diffNone    = "None"
)

// serverFields are set by the server, not the user, and never diffed.
var serverFields = map[string]bool{
	"Status": true, "StatusDescription": true, "Stable": true, "Version": true, "SubmitTime": true,
	"CreateIndex": true, "ModifyIndex": true, "JobModifyIndex": true,
}

// jobDiff describes what changes from old to new, in the shape of Nomad's
// plan diff: scalar fields, nested objects, and per group and task. Only
// changes are listed.
func jobDiff(old, new *api.Job) *api.JobDiff {
	d := &api.JobDiff{ID: *new.ID, Type: diffEdited}
	if old == nil {
		d.Type = diffAdded
	}
	oldM, newM := toMap(old), toMap(new)
	d.Fields, d.Objects = diffMaps(oldM, newM, map[string]bool{"TaskGroups": true})
	oldGroups := map[string]*api.TaskGroup{}
	if old != nil {
		for _, tg := range old.TaskGroups {
			oldGroups[*tg.Name] = tg
		}
	}
	for _, tg := range new.TaskGroups {
		d.TaskGroups = append(d.TaskGroups, groupDiff(oldGroups[*tg.Name], tg))
		delete(oldGroups, *tg.Name)
	}
	for _, name := range slices.Sorted(maps.Keys(oldGroups)) {
		d.TaskGroups = append(d.TaskGroups, groupDiff(oldGroups[name], nil))
	}
	if old != nil && len(d.Fields) == 0 && len(d.Objects) == 0 && allNone(d.TaskGroups) {
		d.Type = diffNone
	}
	return d
}

func groupDiff(old, new *api.TaskGroup) *api.TaskGroupDiff {
	d := &api.TaskGroupDiff{Type: changeType(old != nil, new != nil)}
	oldTasks := map[string]*api.Task{}
	if old != nil {
		d.Name = *old.Name
		for _, t := range old.Tasks {
			oldTasks[t.Name] = t
		}
	}
	if new != nil {
		d.Name = *new.Name
	}
	d.Fields, d.Objects = diffMaps(toMap(old), toMap(new), map[string]bool{"Tasks": true})
	if new != nil {
		for _, t := range new.Tasks {
			d.Tasks = append(d.Tasks, taskDiff(oldTasks[t.Name], t))
			delete(oldTasks, t.Name)
		}
	}
	for _, name := range slices.Sorted(maps.Keys(oldTasks)) {
		d.Tasks = append(d.Tasks, taskDiff(oldTasks[name], nil))
	}
	if d.Type == diffEdited && len(d.Fields) == 0 && len(d.Objects) == 0 && allTasksNone(d.Tasks) {
		d.Type = diffNone
	}
	return d
}

func taskDiff(old, new *api.Task) *api.TaskDiff {
	d := &api.TaskDiff{Type: changeType(old != nil, new != nil)}
	if old != nil {
		d.Name = old.Name
	}
	if new != nil {
		d.Name = new.Name
	}
	d.Fields, d.Objects = diffMaps(toMap(old), toMap(new), nil)
	if d.Type == diffEdited && len(d.Fields) == 0 && len(d.Objects) == 0 {
		d.Type = diffNone
	}
	return d
}

func changeType(hadOld, hasNew bool) string {
	switch {
	case !hadOld:
		return diffAdded
	case !hasNew:
		return diffDeleted
	}
	return diffEdited
}

func allNone(gs []*api.TaskGroupDiff) bool {
	for _, g := range gs {
		if g.Type != diffNone {
			return false
		}
	}
	return true
}

func allTasksNone(ts []*api.TaskDiff) bool {
	for _, t := range ts {
		if t.Type != diffNone {
			return false
		}
	}
	return true
}

// toMap turns an API object into its JSON form, nil into an empty map.
func toMap(v any) map[string]any {
	out := map[string]any{}
	b, err := json.Marshal(v)
	if err != nil || string(b) == "null" {
		return out
	}
	_ = json.Unmarshal(b, &out) // an object's JSON always decodes into a map
	return out
}

// diffMaps compares two JSON objects: scalars and scalar lists become field
// diffs, nested objects and object lists become object diffs.
func diffMaps(old, new map[string]any, skip map[string]bool) ([]*api.FieldDiff, []*api.ObjectDiff) {
	var fields []*api.FieldDiff
	var objects []*api.ObjectDiff
	keys := map[string]bool{}
	for k := range old {
		keys[k] = true
	}
	for k := range new {
		keys[k] = true
	}
	for _, k := range slices.Sorted(maps.Keys(keys)) {
		if skip[k] || serverFields[k] {
			continue
		}
		o, n := old[k], new[k]
		switch {
		case isObject(o) || isObject(n):
			if obj := objectDiff(k, asMap(o), asMap(n)); obj != nil {
				objects = append(objects, obj)
			}
		case isObjectList(o) || isObjectList(n):
			objects = append(objects, listDiff(singular(k), asList(o), asList(n))...)
		case isList(o) || isList(n):
			fields = append(fields, scalarListDiff(k, asList(o), asList(n))...)
		default:
			if f := fieldDiff(k, o, n); f != nil {
				fields = append(fields, f)
			}
		}
	}
	return fields, objects
}

func objectDiff(name string, old, new map[string]any) *api.ObjectDiff {
	fields, objects := diffMaps(old, new, nil)
	if len(fields) == 0 && len(objects) == 0 {
		return nil
	}
	return &api.ObjectDiff{Type: changeType(len(old) > 0, len(new) > 0), Name: name, Fields: fields, Objects: objects}
}

// listDiff matches list items by value: items only in old are deleted,
// items only in new are added.
func listDiff(name string, old, new []any) []*api.ObjectDiff {
	var out []*api.ObjectDiff
	inNew := map[string]bool{}
	for _, v := range new {
		inNew[canon(v)] = true
	}
	inOld := map[string]bool{}
	for _, v := range old {
		inOld[canon(v)] = true
		if !inNew[canon(v)] {
			out = append(out, objectDiff(name, asMap(v), nil))
		}
	}
	for _, v := range new {
		if !inOld[canon(v)] {
			out = append(out, objectDiff(name, nil, asMap(v)))
		}
	}
	return out
}

func scalarListDiff(name string, old, new []any) []*api.FieldDiff {
	var out []*api.FieldDiff
	inNew := map[string]bool{}
	for _, v := range new {
		inNew[scalar(v)] = true
	}
	inOld := map[string]bool{}
	for _, v := range old {
		inOld[scalar(v)] = true
		if !inNew[scalar(v)] {
			out = append(out, &api.FieldDiff{Type: diffDeleted, Name: name, Old: scalar(v)})
		}
	}
	for _, v := range new {
		if !inOld[scalar(v)] {
			out = append(out, &api.FieldDiff{Type: diffAdded, Name: name, New: scalar(v)})
		}
	}
	return out
}

func fieldDiff(name string, old, new any) *api.FieldDiff {
	o, n := scalar(old), scalar(new)
	if o == n {
		return nil
	}
	t := diffEdited
	switch {
	case old == nil:
		t = diffAdded
	case new == nil:
		t = diffDeleted
	}
	return &api.FieldDiff{Type: t, Name: name, Old: o, New: n}
}

func scalar(v any) string {
	switch x := v.(type) {
	case nil:
		return ""
	case string:
		return x
	case float64:
		return strings.TrimSuffix(fmt.Sprintf("%f", x), ".000000")
	}
	return fmt.Sprint(v)
}

func canon(v any) string {
	b, _ := json.Marshal(v) // decoded JSON re-encodes
	return string(b)
}

func isObject(v any) bool { _, ok := v.(map[string]any); return ok }
func isList(v any) bool   { _, ok := v.([]any); return ok }

func isObjectList(v any) bool {
	l, ok := v.([]any)
	return ok && len(l) > 0 && isObject(l[0])
}

func asMap(v any) map[string]any {
	m, _ := v.(map[string]any)
	return m
}

func asList(v any) []any {
	l, _ := v.([]any)
	return l
}

// singular names one item of a list the way Nomad's diff does: Affinities
// holds Affinity objects.
func singular(name string) string {
	switch {
	case strings.HasSuffix(name, "ies"):
		return strings.TrimSuffix(name, "ies") + "y"
	case strings.HasSuffix(name, "s"):
		return strings.TrimSuffix(name, "s")
	}
	return name
}

// Plan annotations, as Nomad's scheduler names them.
const (
	annotationForcesCreate            = "forces create"
	annotationForcesDestroy           = "forces destroy"
	annotationForcesInplaceUpdate     = "forces in-place update"
	annotationForcesDestructiveUpdate = "forces create/destroy update"
)

// annotateDiff adds to a plan's diff what Nomad's scheduler adds (its
// annotate.go): per group, the counts of each kind of update; on a count
// change, whether it creates or destroys; per changed task, whether the
// change is done in place or by replacing the allocation.
func annotateDiff(d *api.JobDiff, updates map[string]*api.DesiredUpdates) {
	for _, tg := range d.TaskGroups {
		if u := updates[tg.Name]; u != nil {
			tg.Updates = map[string]uint64{}
			for kind, n := range map[string]uint64{
				"ignore": u.Ignore, "create": u.Place, "migrate": u.Migrate, "destroy": u.Stop,
				"canary": u.Canary, "in-place update": u.InPlaceUpdate, "create/destroy update": u.DestructiveUpdate,
			} {
				if n != 0 {
					tg.Updates[kind] = n
				}
			}
		}
		for _, f := range tg.Fields {
			if f.Name != "Count" {
				continue
			}
			o, _ := strconv.Atoi(f.Old)
			n, _ := strconv.Atoi(f.New)
			switch {
			case n > o:
				f.Annotations = append(f.Annotations, annotationForcesCreate)
			case n < o:
				f.Annotations = append(f.Annotations, annotationForcesDestroy)
			}
		}
		for _, t := range tg.Tasks {
			annotateTask(t, tg)
		}
	}
}

// annotateTask says how a task's change is applied. As in Nomad, every
// field but KillTimeout and every object but services, constraints and the
// log config force a new allocation.
func annotateTask(t *api.TaskDiff, parent *api.TaskGroupDiff) {
	switch {
	case t.Type == diffNone:
		return
	case t.Type == diffAdded && parent.Type == diffAdded:
		t.Annotations = append(t.Annotations, annotationForcesCreate)
		return
	case t.Type == diffDeleted && parent.Type == diffDeleted:
		t.Annotations = append(t.Annotations, annotationForcesDestroy)
		return
	}
	destructive := t.Type != diffEdited
	for _, f := range t.Fields {
		destructive = destructive || f.Name != "KillTimeout"
	}
	for _, o := range t.Objects {
		destructive = destructive || o.Name != "Service" && o.Name != "Constraint" && o.Name != "LogConfig"
	}
	if destructive {
		t.Annotations = append(t.Annotations, annotationForcesDestructiveUpdate)
	} else {
		t.Annotations = append(t.Annotations, annotationForcesInplaceUpdate)
	}
}
