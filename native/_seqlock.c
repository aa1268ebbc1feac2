/*
 * spine.shm._seqlock - a thin CPython binding of native/spine_shm.h.
 *
 * Every function takes the segment as a writable buffer (an mmap of the
 * whole segment), validates its layout, and does one seqlock operation with
 * the GIL released around copies and waits.  Policy (naming, permissions,
 * error messages for users) lives in the Python modules of spine/shm.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include "spine_shm.h"

typedef struct {
    Py_buffer view;
    spine_shm_header *h;
} segment_ref;

/* Take a buffer on the segment and check its layout; -1 with an exception set on failure. */
static int segment_acquire(PyObject *obj, segment_ref *seg)
{
    spine_shm_status st;
    if (PyObject_GetBuffer(obj, &seg->view, PyBUF_WRITABLE | PyBUF_SIMPLE) != 0) return -1;
    if (((uintptr_t)seg->view.buf) % SPINE_SHM_CACHE_LINE != 0) {
        PyBuffer_Release(&seg->view);
        PyErr_SetString(PyExc_ValueError, "segment buffer is not 64-byte aligned: pass the mmap of the segment");
        return -1;
    }
    st = spine_shm_validate(seg->view.buf, (uint64_t)seg->view.len);
    if (st != SPINE_SHM_OK) {
        PyBuffer_Release(&seg->view);
        PyErr_Format(PyExc_ValueError, "not a valid spine segment (layout status %d)", (int)st);
        return -1;
    }
    seg->h = (spine_shm_header *)seg->view.buf;
    return 0;
}

static PyObject *info_tuple(int status, const spine_shm_frame_info *info)
{
    return Py_BuildValue("(iKIKKL)", status, (unsigned long long)info->frame_index, (unsigned int)info->slot_index,
                         (unsigned long long)info->seq, (unsigned long long)info->data_size,
                         (long long)info->timestamp_ns);
}

PyDoc_STRVAR(geometry_doc, "geometry(slot_count, slot_size) -> (ctrl_offset, payload_offset, slot_stride, total_size) or None if absurd");
static PyObject *py_geometry(PyObject *self, PyObject *args)
{
    unsigned long long count, size;
    spine_shm_geometry g;
    if (!PyArg_ParseTuple(args, "KK:geometry", &count, &size)) return NULL;
    if (count > UINT32_MAX || spine_shm_geometry_of((uint32_t)count, size, &g) != 0) Py_RETURN_NONE;
    return Py_BuildValue("(KKKK)", (unsigned long long)g.ctrl_offset, (unsigned long long)g.payload_offset,
                         (unsigned long long)g.slot_stride, (unsigned long long)g.total_size);
}

PyDoc_STRVAR(validate_doc, "validate(buffer) -> layout status code (0 = valid)");
static PyObject *py_validate(PyObject *self, PyObject *args)
{
    Py_buffer view;
    spine_shm_status st;
    if (!PyArg_ParseTuple(args, "y*:validate", &view)) return NULL;
    st = spine_shm_validate(view.buf, (uint64_t)view.len);
    PyBuffer_Release(&view);
    return PyLong_FromLong((long)st);
}

PyDoc_STRVAR(init_doc, "init(segment, slot_count, slot_size, segment_id, created_ns): lay out a zeroed segment");
static PyObject *py_init(PyObject *self, PyObject *args)
{
    PyObject *obj;
    Py_buffer view;
    unsigned long long count, size, seg_id;
    long long created;
    int r;
    if (!PyArg_ParseTuple(args, "OKKKL:init", &obj, &count, &size, &seg_id, &created)) return NULL;
    if (count > UINT32_MAX) {
        PyErr_SetString(PyExc_ValueError, "slot_count out of range");
        return NULL;
    }
    if (PyObject_GetBuffer(obj, &view, PyBUF_WRITABLE | PyBUF_SIMPLE) != 0) return NULL;
    if (((uintptr_t)view.buf) % SPINE_SHM_CACHE_LINE != 0) {
        PyBuffer_Release(&view);
        PyErr_SetString(PyExc_ValueError, "segment buffer is not 64-byte aligned");
        return NULL;
    }
    r = spine_shm_init(view.buf, (uint64_t)view.len, (uint32_t)count, size, seg_id, created);
    PyBuffer_Release(&view);
    if (r != 0) {
        PyErr_SetString(PyExc_ValueError, "geometry absurd or buffer too small for it");
        return NULL;
    }
    Py_RETURN_NONE;
}

PyDoc_STRVAR(header_doc,
             "header(segment) -> (slot_count, slot_size, segment_id, created_ns, writer_pid, writer_start_ticks, "
             "writer_generation, frame_count)");
static PyObject *py_header(PyObject *self, PyObject *args)
{
    PyObject *obj, *res;
    segment_ref seg;
    spine_shm_header *h;
    if (!PyArg_ParseTuple(args, "O:header", &obj)) return NULL;
    if (segment_acquire(obj, &seg) != 0) return NULL;
    h = seg.h;
    res = Py_BuildValue("(IKKLKKKK)", (unsigned int)h->slot_count, (unsigned long long)h->slot_size,
                        (unsigned long long)h->segment_id, (long long)h->created_ns,
                        (unsigned long long)SPINE_LOAD(&h->writer_pid, SPINE_ACQUIRE),
                        (unsigned long long)SPINE_LOAD(&h->writer_start_ticks, SPINE_ACQUIRE),
                        (unsigned long long)SPINE_LOAD(&h->writer_generation, SPINE_ACQUIRE),
                        (unsigned long long)SPINE_LOAD(&h->frame_count, SPINE_ACQUIRE));
    PyBuffer_Release(&seg.view);
    return res;
}

PyDoc_STRVAR(claim_doc,
             "claim(segment, pid, start_ticks, expected_pid) -> bool: take the writer role if its holder is "
             "expected_pid (0 = none, or a pid known dead); closes slots a dead writer left half-written");
static PyObject *py_claim(PyObject *self, PyObject *args)
{
    PyObject *obj;
    segment_ref seg;
    unsigned long long pid, ticks, expected;
    int r;
    if (!PyArg_ParseTuple(args, "OKKK:claim", &obj, &pid, &ticks, &expected)) return NULL;
    if (segment_acquire(obj, &seg) != 0) return NULL;
    r = spine_shm_claim(seg.h, pid, ticks, expected);
    PyBuffer_Release(&seg.view);
    return PyBool_FromLong(r == 0);
}

PyDoc_STRVAR(release_doc, "release(segment, pid): give up the writer role if pid holds it");
static PyObject *py_release(PyObject *self, PyObject *args)
{
    PyObject *obj;
    segment_ref seg;
    unsigned long long pid;
    if (!PyArg_ParseTuple(args, "OK:release", &obj, &pid)) return NULL;
    if (segment_acquire(obj, &seg) != 0) return NULL;
    spine_shm_release(seg.h, pid);
    PyBuffer_Release(&seg.view);
    Py_RETURN_NONE;
}

PyDoc_STRVAR(write_doc,
             "write(segment, data, timestamp_ns) -> (0, frame_index, slot_index, seq, data_size, timestamp_ns, "
             "committed_ns); committed_ns is CLOCK_MONOTONIC read just before the commit (before sleeping "
             "readers are woken); ValueError if data exceeds the slot size");
static PyObject *py_write(PyObject *self, PyObject *args)
{
    PyObject *obj;
    segment_ref seg;
    Py_buffer data;
    long long ts;
    spine_shm_frame_info info;
    struct timespec committed;
    if (!PyArg_ParseTuple(args, "Oy*L:write", &obj, &data, &ts)) return NULL;
    if (segment_acquire(obj, &seg) != 0) {
        PyBuffer_Release(&data);
        return NULL;
    }
    if ((uint64_t)data.len > seg.h->slot_size) {
        PyErr_Format(PyExc_ValueError, "frame of %zd bytes exceeds the slot size of %llu bytes", data.len,
                     (unsigned long long)seg.h->slot_size);
        PyBuffer_Release(&data);
        PyBuffer_Release(&seg.view);
        return NULL;
    }
    /* spine_shm_write, with the time of the commit taken between the data copy and the commit */
    Py_BEGIN_ALLOW_THREADS
    spine_shm_write_begin(seg.h, &info);
    spine_shm_store_payload(seg.h, &info, data.buf, (uint64_t)data.len);
    info.data_size = (uint64_t)data.len;
    info.timestamp_ns = ts;
    clock_gettime(CLOCK_MONOTONIC, &committed);
    spine_shm_write_commit(seg.h, &info);
    Py_END_ALLOW_THREADS
    PyBuffer_Release(&data);
    PyBuffer_Release(&seg.view);
    return Py_BuildValue("(iKIKKLL)", SPINE_SHM_OK, (unsigned long long)info.frame_index,
                         (unsigned int)info.slot_index, (unsigned long long)info.seq,
                         (unsigned long long)info.data_size, (long long)info.timestamp_ns,
                         (long long)committed.tv_sec * 1000000000LL + committed.tv_nsec);
}

static PyObject *read_common(PyObject *args, int latest)
{
    PyObject *obj;
    segment_ref seg;
    Py_buffer out;
    unsigned long long arg;
    spine_shm_frame_info info;
    spine_shm_status st;
    memset(&info, 0, sizeof info);
    if (!PyArg_ParseTuple(args, latest ? "Ow*K:read_latest" : "Ow*K:read_frame", &obj, &out, &arg)) return NULL;
    if (!PyBuffer_IsContiguous(&out, 'A')) {
        PyBuffer_Release(&out);
        PyErr_SetString(PyExc_ValueError, "destination buffer must be contiguous");
        return NULL;
    }
    if (segment_acquire(obj, &seg) != 0) {
        PyBuffer_Release(&out);
        return NULL;
    }
    Py_BEGIN_ALLOW_THREADS
    if (latest)
        st = spine_shm_read_latest(seg.h, out.buf, (uint64_t)out.len, &info, arg > UINT_MAX ? UINT_MAX : (unsigned)arg);
    else
        st = spine_shm_read_frame(seg.h, arg, out.buf, (uint64_t)out.len, &info);
    Py_END_ALLOW_THREADS
    PyBuffer_Release(&out);
    PyBuffer_Release(&seg.view);
    return info_tuple(st, &info);
}

PyDoc_STRVAR(read_frame_doc,
             "read_frame(segment, out, frame_index) -> (status, frame_index, slot_index, seq, data_size, "
             "timestamp_ns); copies into the writable buffer out");
static PyObject *py_read_frame(PyObject *self, PyObject *args) { return read_common(args, 0); }

PyDoc_STRVAR(read_latest_doc, "read_latest(segment, out, attempts) -> like read_frame, for the newest frame");
static PyObject *py_read_latest(PyObject *self, PyObject *args) { return read_common(args, 1); }

PyDoc_STRVAR(peek_doc,
             "peek(segment, frame_index) -> (status, frame_index, slot_index, seq, data_size, timestamp_ns) "
             "without copying; pair with check() after using the payload in place");
static PyObject *py_peek(PyObject *self, PyObject *args)
{
    PyObject *obj;
    segment_ref seg;
    unsigned long long frame;
    spine_shm_frame_info info;
    spine_shm_status st;
    memset(&info, 0, sizeof info);
    if (!PyArg_ParseTuple(args, "OK:peek", &obj, &frame)) return NULL;
    if (segment_acquire(obj, &seg) != 0) return NULL;
    st = spine_shm_peek_frame(seg.h, frame, &info);
    PyBuffer_Release(&seg.view);
    return info_tuple(st, &info);
}

PyDoc_STRVAR(check_doc, "check(segment, slot_index, seq) -> bool: the slot still holds the frame peek() saw");
static PyObject *py_check(PyObject *self, PyObject *args)
{
    PyObject *obj;
    segment_ref seg;
    unsigned long long slot, seq;
    bool same;
    if (!PyArg_ParseTuple(args, "OKK:check", &obj, &slot, &seq)) return NULL;
    if (segment_acquire(obj, &seg) != 0) return NULL;
    if (slot >= seg.h->slot_count) {
        PyBuffer_Release(&seg.view);
        PyErr_SetString(PyExc_ValueError, "slot index out of range");
        return NULL;
    }
    same = spine_shm_check(seg.h, (uint32_t)slot, seq);
    PyBuffer_Release(&seg.view);
    return PyBool_FromLong(same);
}

PyDoc_STRVAR(frame_count_doc, "frame_count(segment) -> frames committed so far");
static PyObject *py_frame_count(PyObject *self, PyObject *args)
{
    PyObject *obj;
    segment_ref seg;
    uint64_t fc;
    if (!PyArg_ParseTuple(args, "O:frame_count", &obj)) return NULL;
    if (segment_acquire(obj, &seg) != 0) return NULL;
    fc = SPINE_LOAD(&seg.h->frame_count, SPINE_ACQUIRE);
    PyBuffer_Release(&seg.view);
    return PyLong_FromUnsignedLongLong(fc);
}

PyDoc_STRVAR(wait_doc,
             "wait(segment, seen, timeout_ns[, follow_ns]) -> frame count once it exceeds seen, or None after "
             "timeout_ns (negative: no limit); sleeps on a futex with the GIL released.  Woken as a write "
             "begins on another CPU, it polls for that write's commit up to follow_ns (default "
             "SPINE_SHM_FOLLOW_NS; 0: sleeps until the commit)");
static PyObject *py_wait(PyObject *self, PyObject *args)
{
    PyObject *obj;
    segment_ref seg;
    unsigned long long seen;
    long long timeout_ns, left, follow_ns = SPINE_SHM_FOLLOW_NS;
    int64_t r;
    int err;
    struct timespec t0, t1;
    if (!PyArg_ParseTuple(args, "OKL|L:wait", &obj, &seen, &timeout_ns, &follow_ns)) return NULL;
    if (segment_acquire(obj, &seg) != 0) return NULL;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    left = timeout_ns;
    for (;;) {
        Py_BEGIN_ALLOW_THREADS
        r = spine_shm_wait_follow(seg.h, seen, left, follow_ns);
        err = errno;
        Py_END_ALLOW_THREADS
        if (r >= 0) break;
        if (err == ETIMEDOUT) {
            PyBuffer_Release(&seg.view);
            Py_RETURN_NONE;
        }
        /* EINTR: let Python run signal handlers (e.g. KeyboardInterrupt), then wait the rest */
        if (PyErr_CheckSignals() != 0) {
            PyBuffer_Release(&seg.view);
            return NULL;
        }
        if (timeout_ns >= 0) {
            clock_gettime(CLOCK_MONOTONIC, &t1);
            left = timeout_ns - ((long long)(t1.tv_sec - t0.tv_sec) * 1000000000LL + (t1.tv_nsec - t0.tv_nsec));
            if (left <= 0) {
                PyBuffer_Release(&seg.view);
                Py_RETURN_NONE;
            }
        }
    }
    PyBuffer_Release(&seg.view);
    return PyLong_FromLongLong(r);
}

PyDoc_STRVAR(wait_next_doc,
             "wait_next(segment, out, next, timeout_ns, attempts[, follow_ns]) -> (status, frame_index, slot_index, "
             "seq, data_size, timestamp_ns, next, skipped); takes frame `next` (or the oldest still in the ring if "
             "the reader lagged): copies it into out, or with out None only peeks at it (check() it after use). "
             "If it is not there yet, sleeps on the futex up to timeout_ns (negative: no limit; 0: no sleep) "
             "and returns status NOT_YET after that.  Copying, it wakes when the frame's write begins on another "
             "CPU and copies along behind it for up to follow_ns (spine_shm_copy_along); peeking, it polls for the "
             "commit as wait() does.  The wait and the copy run in one call with the GIL released, so no Python "
             "runs between the wake-up and the copy");
static PyObject *py_wait_next(PyObject *self, PyObject *args)
{
    PyObject *obj, *dest;
    segment_ref seg;
    Py_buffer out = {0};
    int have_out;
    static char empty;
    unsigned long long next, skipped = 0;
    long long timeout_ns, left, follow_ns = SPINE_SHM_FOLLOW_NS;
    unsigned int attempts;
    spine_shm_frame_info info;
    spine_shm_status st;
    int err = 0;
    struct timespec t0, t1;
    memset(&info, 0, sizeof info);
    if (!PyArg_ParseTuple(args, "OOKLI|L:wait_next", &obj, &dest, &next, &timeout_ns, &attempts,
                          &follow_ns)) return NULL;
    have_out = dest != Py_None;
    if (have_out) {
        if (PyObject_GetBuffer(dest, &out, PyBUF_WRITABLE | PyBUF_ANY_CONTIGUOUS) != 0) return NULL;
    }
    if (segment_acquire(obj, &seg) != 0) {
        if (have_out) PyBuffer_Release(&out);
        return NULL;
    }
    if (have_out && out.buf == NULL) out.buf = &empty; /* a zero-length buffer is still a copy, not a peek */
    clock_gettime(CLOCK_MONOTONIC, &t0);
    left = timeout_ns;
    for (;;) {
        uint64_t n = next, sk = skipped;
        Py_BEGIN_ALLOW_THREADS
        st = spine_shm_wait_next(seg.h, &n, have_out ? out.buf : NULL, have_out ? (uint64_t)out.len : 0, &info, &sk,
                                 attempts, left, follow_ns, &err);
        Py_END_ALLOW_THREADS
        next = n;
        skipped = sk;
        if (st != SPINE_SHM_NOT_YET || err == ETIMEDOUT) break;
        /* EINTR: let Python run signal handlers (e.g. KeyboardInterrupt), then wait the rest */
        if (PyErr_CheckSignals() != 0) {
            if (have_out) PyBuffer_Release(&out);
            PyBuffer_Release(&seg.view);
            return NULL;
        }
        if (timeout_ns >= 0) {
            clock_gettime(CLOCK_MONOTONIC, &t1);
            left = timeout_ns - ((long long)(t1.tv_sec - t0.tv_sec) * 1000000000LL + (t1.tv_nsec - t0.tv_nsec));
            if (left < 0) left = 0; /* one last look, then NOT_YET */
        }
    }
    if (have_out) PyBuffer_Release(&out);
    PyBuffer_Release(&seg.view);
    return Py_BuildValue("(iKIKKLKK)", (int)st, (unsigned long long)info.frame_index,
                         (unsigned int)info.slot_index, (unsigned long long)info.seq,
                         (unsigned long long)info.data_size, (long long)info.timestamp_ns, next, skipped);
}

static PyMethodDef methods[] = {
    {"geometry", py_geometry, METH_VARARGS, geometry_doc},
    {"validate", py_validate, METH_VARARGS, validate_doc},
    {"init", py_init, METH_VARARGS, init_doc},
    {"header", py_header, METH_VARARGS, header_doc},
    {"claim", py_claim, METH_VARARGS, claim_doc},
    {"release", py_release, METH_VARARGS, release_doc},
    {"write", py_write, METH_VARARGS, write_doc},
    {"read_frame", py_read_frame, METH_VARARGS, read_frame_doc},
    {"read_latest", py_read_latest, METH_VARARGS, read_latest_doc},
    {"peek", py_peek, METH_VARARGS, peek_doc},
    {"check", py_check, METH_VARARGS, check_doc},
    {"frame_count", py_frame_count, METH_VARARGS, frame_count_doc},
    {"wait", py_wait, METH_VARARGS, wait_doc},
    {"wait_next", py_wait_next, METH_VARARGS, wait_next_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "spine.shm._seqlock",
    "Seqlock operations on a spine waveform segment (native/spine_shm.h).", -1, methods, NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__seqlock(void)
{
    PyObject *m = PyModule_Create(&module);
    if (m == NULL) return NULL;
#define ADD_INT(name, value)                                                     \
    if (PyModule_AddObject(m, name, PyLong_FromUnsignedLongLong(value)) != 0) { \
        Py_DECREF(m);                                                            \
        return NULL;                                                             \
    }
    ADD_INT("MAGIC", SPINE_SHM_MAGIC)
    ADD_INT("LAYOUT_VERSION", SPINE_SHM_LAYOUT_VERSION)
    ADD_INT("HEADER_SIZE", SPINE_SHM_HEADER_SIZE)
    ADD_INT("MAX_SLOTS", SPINE_SHM_MAX_SLOTS)
    ADD_INT("MAX_SLOT_SIZE", SPINE_SHM_MAX_SLOT_SIZE)
    ADD_INT("OK", SPINE_SHM_OK)
    ADD_INT("E_TOO_SMALL", SPINE_SHM_E_TOO_SMALL)
    ADD_INT("E_MAGIC", SPINE_SHM_E_MAGIC)
    ADD_INT("E_VERSION", SPINE_SHM_E_VERSION)
    ADD_INT("E_GEOMETRY", SPINE_SHM_E_GEOMETRY)
    ADD_INT("E_TRUNCATED", SPINE_SHM_E_TRUNCATED)
    ADD_INT("NOT_YET", SPINE_SHM_NOT_YET)
    ADD_INT("OVERWRITTEN", SPINE_SHM_OVERWRITTEN)
    ADD_INT("BUFFER_SMALL", SPINE_SHM_BUFFER_SMALL)
    ADD_INT("EMPTY", SPINE_SHM_EMPTY)
    ADD_INT("FOLLOW_NS", SPINE_SHM_FOLLOW_NS)
#undef ADD_INT
    return m;
}
