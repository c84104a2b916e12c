"""FQ model format v1 (docs/format.md) in pure python + numpy.

write_model(yaml_path, name, inputs, outputs, tensors, nodes, meta) writes NAME.yaml and NAME.fqw.
  tensors: dicts {name, dtype, shape, [quant]} plus `value` (a numpy array) for constants;
  nodes:   dicts {name, op, inputs, outputs, [attrs], [version]};  meta: str -> str.
read_blob(path) -> {entry name: read-only numpy array}, after checking every rule of section 2.
read_model(yaml_path) -> (graph dict, {tensor name: array}) for the YAML subset write_model emits
  (block lists of block maps, flow-style values, comments), constants checked against the blob.
"""
import json
import os
import re
import struct

import numpy as np

DTYPES = {'u8': (1, np.uint8), 'i8': (2, np.int8), 'u16': (3, np.uint16), 'i16': (4, np.int16),
          'i32': (5, np.int32), 'f32': (6, np.float32)}   # i4 (code 7): read as packed bytes only
CODES = {code: (name, np.dtype(t).newbyteorder('<')) for name, (code, t) in DTYPES.items()}
I4 = 7
HEADER = struct.Struct('<4sIIIQQQQ16s')   # 64 bytes; the checksum field is at byte 40
ENTRY = struct.Struct('<IBBBBQQQ')        # 32 bytes, then i64 dims, name, pad to 8
MAGIC, BOM = b'FQWB', 0x01020304


def fnv1a64(data, h=0xcbf29ce484222325):
    for byte in data:
        h = ((h ^ byte) * 0x100000001b3) & 0xFFFFFFFFFFFFFFFF
    return h


def _align(n, a):
    return (n + a - 1) // a * a


# ---------------------------------------------------------------------------------------- blob

def write_blob(path, arrays):
    """arrays: list of (name, dtype name, numpy array), written in this order."""
    arrays = [(n.encode(), DTYPES[dt][0], np.ascontiguousarray(a, CODES[DTYPES[dt][0]][1]))
              for n, dt, a in arrays]
    table_size = sum(_align(ENTRY.size + 8 * a.ndim + len(n), 8) for n, _, a in arrays)
    offsets, end = [], _align(HEADER.size + table_size, 64)
    for _, _, a in arrays:
        offsets.append(end)
        end = _align(end + a.nbytes, 64)
    file_size = offsets[-1] + arrays[-1][2].nbytes if arrays else HEADER.size + table_size
    buf = bytearray(file_size)   # gaps and padding stay zero
    pos = HEADER.size
    for (name, code, a), off in zip(arrays, offsets):
        data = a.tobytes()
        ENTRY.pack_into(buf, pos, len(name), code, 0, a.ndim, 0, off, len(data), fnv1a64(data))
        struct.pack_into('<%dq' % a.ndim, buf, pos + ENTRY.size, *a.shape)
        npos = pos + ENTRY.size + 8 * a.ndim
        buf[npos:npos + len(name)] = name
        buf[off:off + len(data)] = data
        pos = _align(npos + len(name), 8)
    HEADER.pack_into(buf, 0, MAGIC, 1, BOM, len(arrays), HEADER.size, table_size, file_size, 0,
                     bytes(16))
    struct.pack_into('<Q', buf, 40, fnv1a64(buf))   # computed while bytes 40..47 are zero
    with open(path, 'wb') as f:
        f.write(buf)


def read_blob(path):
    buf = memoryview(open(path, 'rb').read())

    def check(ok, msg):
        if not ok:
            raise ValueError('%s: %s' % (path, msg))

    check(len(buf) >= HEADER.size, 'shorter than the 64-byte header')
    magic, ver, bom, count, toff, tsize, fsize, fsum, reserved = HEADER.unpack_from(buf)
    check(magic == MAGIC and ver == 1 and bom == BOM, 'bad magic, version or byte-order mark')
    check(count <= 1000000 and toff == HEADER.size and reserved == bytes(16), 'bad header fields')
    check(fsize == len(buf), 'file_size %d but the file has %d bytes' % (fsize, len(buf)))
    check(fnv1a64(buf[48:], fnv1a64(bytes(8), fnv1a64(buf[:40]))) == fsum,
          'file checksum mismatch')
    table_end = toff + tsize
    check(table_end <= len(buf), 'table runs past the end of the file')
    covered = np.zeros(len(buf), bool)
    covered[:table_end] = True
    out, pos = {}, toff
    for _ in range(count):
        check(pos % 8 == 0 and pos + ENTRY.size <= table_end, 'table entry out of bounds')
        nlen, code, layout, ndim, res, off, size, dsum = ENTRY.unpack_from(buf, pos)
        check(1 <= nlen <= 255 and (code in CODES or code == I4),
              'entry at %d: bad name length or dtype' % pos)
        check(layout == 0 and ndim <= 8 and res == 0, 'entry at %d: bad layout/ndim' % pos)
        npos = pos + ENTRY.size + 8 * ndim
        dims = struct.unpack_from('<%dq' % ndim, buf, pos + ENTRY.size)
        name = bytes(buf[npos:npos + nlen]).decode()
        pos = _align(npos + nlen, 8)
        check(pos <= table_end and not any(buf[npos + nlen:pos]), "'%s': bad name padding" % name)
        check(name not in out and all(d >= 1 for d in dims), "'%s': duplicate or bad dims" % name)
        numel = int(np.prod(dims, dtype=np.int64))
        want = (numel + 1) // 2 if code == I4 else numel * CODES[code][1].itemsize
        check(size == want, "'%s': data_size %d, expected %d" % (name, size, want))
        check(off % 64 == 0 and off >= table_end and off + size <= len(buf),
              "'%s': data_offset %d misaligned or out of bounds" % (name, off))
        check(not covered[off:off + size].any(), "'%s': data overlaps another region" % name)
        covered[off:off + size] = True
        data = buf[off:off + size]
        check(fnv1a64(data) == dsum, "'%s': data checksum mismatch" % name)
        out[name] = (np.frombuffer(data, np.uint8) if code == I4 else
                     np.frombuffer(data, CODES[code][1]).reshape(dims))
    check(pos == table_end, 'table_size does not match the entries')
    check(not np.frombuffer(buf, np.uint8)[~covered].any(), 'gaps between regions are not zero')
    return out


# ---------------------------------------------------------------------------------------- YAML

_PLAIN = re.compile(r'[A-Za-z_][A-Za-z0-9_.\-/]*')
_KEYWORDS = {'true', 'false', 'yes', 'no', 'on', 'off', 'y', 'n', 'null', '~'}


def _scalar(v):
    if isinstance(v, (bool, np.bool_)):
        return 'true' if v else 'false'
    if isinstance(v, (int, np.integer)):
        return str(int(v))
    if isinstance(v, (float, np.floating)):
        mant, e, exp = repr(float(v)).partition('e')
        # YAML 1.1 readers only take exponent floats with a dot in the mantissa ("1.0e-05").
        return mant + ('' if '.' in mant or not e else '.0') + e + exp
    s = str(v)
    return s if _PLAIN.fullmatch(s) and s.lower() not in _KEYWORDS else json.dumps(s)


def _flow(v):
    if isinstance(v, dict):
        return '{' + ', '.join('%s: %s' % (_scalar(k), _flow(x)) for k, x in v.items()) + '}'
    if isinstance(v, (list, tuple, np.ndarray)):
        return '[' + ', '.join(_flow(x) for x in v) + ']'
    return _scalar(v)


def write_model(yaml_path, name, inputs, outputs, tensors, nodes, meta=None):
    blob = os.path.splitext(os.path.basename(yaml_path))[0] + '.fqw'
    consts = [t for t in tensors if t.get('value') is not None]
    lines = ['format: fq-graph', 'version: 1', 'name: ' + _scalar(name)]
    if consts:
        lines.append('weights: ' + _scalar(blob))
    if meta:
        # meta is a string -> string map: always quote values so "2026" stays a string.
        lines.append('meta: {' + ', '.join('%s: %s' % (_scalar(k), json.dumps(str(v)))
                                           for k, v in meta.items()) + '}')
    lines += ['inputs: ' + _flow(inputs), 'outputs: ' + _flow(outputs), 'tensors:']
    for t in tensors:
        shape = t['shape'] if 'shape' in t else t['value'].shape
        lines += ['  - name: ' + _scalar(t['name']), '    dtype: ' + t['dtype'],
                  '    shape: ' + _flow(list(shape))]
        if t.get('value') is not None:
            assert tuple(t['value'].shape) == tuple(shape), t['name']
            lines.append('    const: true')
        if t.get('quant'):
            lines.append('    quant: ' + _flow(t['quant']))
    lines.append('nodes:')
    for n in nodes:
        lines += ['  - name: ' + _scalar(n['name']), '    op: ' + _scalar(n['op'])]
        if 'version' in n:
            lines.append('    version: %d' % n['version'])
        lines += ['    inputs: ' + _flow(n['inputs']), '    outputs: ' + _flow(n['outputs'])]
        if n.get('attrs'):
            lines.append('    attrs: ' + _flow(n['attrs']))
    with open(yaml_path, 'w') as f:
        f.write('\n'.join(lines) + '\n')
    if consts:
        write_blob(os.path.join(os.path.dirname(yaml_path), blob),
                   [(t['name'], t['dtype'], t['value']) for t in consts])


# Flow tokens: double-quoted strings, brackets/braces/commas, "key:" separators, plain scalars.
_TOKEN = re.compile(r'\s*("(?:[^"\\]|\\.)*"|[\[\]{},]|:(?=\s|$)'
                    r'|[^\s\[\]{},"]+?(?=:\s|:$|[\s\[\]{},]|$))')


def _parse_flow(text, where):
    toks, i = _TOKEN.findall(text), 0

    def value():
        nonlocal i
        tok, i = toks[i], i + 1
        if tok in '[{':
            close, items = ']' if tok == '[' else '}', []
            while toks[i] != close:
                if tok == '[':
                    items.append(value())
                else:
                    key = value()
                    assert toks[i] == ':', where
                    i += 1
                    items.append((key, value()))
                i += toks[i] == ','
            i += 1
            return items if tok == '[' else dict(items)
        if tok.startswith('"'):
            return json.loads(tok)
        for conv in (int, float):
            try:
                return conv(tok)
            except ValueError:
                pass
        return {'true': True, 'false': False}.get(tok, tok)

    try:
        v = value()
        assert i == len(toks)
        return v
    except (AssertionError, IndexError, ValueError):
        raise ValueError('%s: cannot parse %r' % (where, text)) from None


def read_yaml(path):
    doc, items, item = {}, None, None
    for lineno, raw in enumerate(open(path), 1):
        line = re.sub(r'(^|\s)#(?=(?:[^"]*"[^"]*")*[^"]*$).*', '', raw.rstrip('\n')).rstrip()
        if not line.strip():
            continue
        body, where = line.strip(), '%s:%d' % (path, lineno)
        if line[0] != ' ':             # top-level "key: value" or "key:" opening a block list
            key, _, val = body.partition(':')
            doc[key] = _parse_flow(val, where) if val.strip() else []
            items = doc[key] if not val.strip() else None
            continue
        if body.startswith('- '):
            item = {}
            items.append(item)
            body = body[2:]
        key, _, val = body.partition(':')
        item[key.strip()] = _parse_flow(val, where)
    return doc


def read_model(yaml_path):
    g = read_yaml(yaml_path)
    assert g.get('format') == 'fq-graph' and g.get('version') == 1, yaml_path
    blob = read_blob(os.path.join(os.path.dirname(yaml_path), g['weights'])) if 'weights' in g \
        else {}
    consts = {}
    for t in g['tensors']:
        if t.get('const'):
            a = blob[t.get('data', t['name'])]
            if t['dtype'] != 'i4':
                assert a.dtype == DTYPES[t['dtype']][1] and list(a.shape) == t['shape'], t['name']
            consts[t['name']] = a
    return g, consts
