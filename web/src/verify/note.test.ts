import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { fromBase64, toBase64 } from './bytes';
import { NoteError, computeKeyId, isValidKeyName, openNote, parseCheckpoint, parseVerifierKey } from './note';

const fixture = (name: string) => readFileSync(new URL(`./testdata/custos/${name}`, import.meta.url), 'utf8');

// The C2SP signed-note specification's example (https://c2sp.org/signed-note), as quoted in
// tests/testdata/rfc6962/README.md: key id 530d903a.
const SPEC_VKEY = 'example.com/foo+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k';
const SPEC_NOTE =
  'This is an example message.\n\n' +
  '\u2014 example.com/foo Uw2QOkn8srV1yJGh2VYRlL1Tnagv1YEq6TfXppzi2ONncAlTgK7Ztg1ERYNZXsYjOBH3mFXmRKuwHjG1Yu72IneyaQM=\n';

function flipSignatureByte(note: string, at: number): string {
  const split = note.lastIndexOf('\n\n');
  const line = note.slice(split + 2, -1);
  const space = line.lastIndexOf(' ');
  const blob = fromBase64(line.slice(space + 1));
  blob[at] ^= 0x01;
  return note.slice(0, split + 2) + line.slice(0, space + 1) + toBase64(blob) + '\n';
}

describe('verifier keys', () => {
  it('parses the C2SP example key and checks its id', async () => {
    const key = await parseVerifierKey(SPEC_VKEY);
    expect(key.name).toBe('example.com/foo');
    expect(key.keyId).toBe(0x530d903a);
    expect(await computeKeyId(key.name, key.publicKey)).toBe(0x530d903a);
  });

  it('parses the key the Custos server publishes', async () => {
    const key = await parseVerifierKey(fixture('vkey.txt').trim());
    expect(key.name).toBe('127.0.0.1:18741');
    expect(key.keyId).toBe(0x0b97cedc);
  });

  it.each([
    ['a wrong key id', 'example.com/foo+530d903b+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k'],
    ['another name', 'example.com/bar+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k'],
    ['another algorithm', 'example.com/foo+530d903a+AkyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k'],
    ['a short key', 'example.com/foo+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U0='],
    ['no key', 'example.com/foo+530d903a'],
    ['a short id', 'example.com/foo+530d903+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k'],
  ])('refuses %s', async (_what, vkey) => {
    await expect(parseVerifierKey(vkey)).rejects.toBeInstanceOf(NoteError);
  });

  it('knows what a key name may hold', () => {
    expect(isValidKeyName('id.example.com/t/acme')).toBe(true);
    expect(isValidKeyName('')).toBe(false);
    expect(isValidKeyName('a+b')).toBe(false);
    expect(isValidKeyName('a b')).toBe(false);
    expect(isValidKeyName('a\u00a0b')).toBe(false);
    expect(isValidKeyName('a\u3000b')).toBe(false);
  });
});

describe('signed notes', () => {
  it('opens the C2SP example note', async () => {
    const opened = await openNote(SPEC_NOTE, [await parseVerifierKey(SPEC_VKEY)]);
    expect(opened.body).toBe('This is an example message.\n');
    expect(opened.signedBy).toEqual(['example.com/foo+530d903a']);
  });

  it('opens a checkpoint signed by the Custos server', async () => {
    const note = fixture('checkpoint.txt');
    const opened = await openNote(note, [await parseVerifierKey(fixture('vkey.txt').trim())]);
    expect(opened.signedBy).toEqual(['127.0.0.1:18741+0b97cedc']);
    const cp = parseCheckpoint(opened.body);
    expect(cp.origin).toBe('127.0.0.1:18741/t/acme');
    expect(cp.size).toBe(16);
    expect(toBase64(cp.rootHash)).toBe('b6en7GbtmpyeL61UXUMoWMx+AFWgLJgvrb7rbnLPaNo=');
  });

  it('fails when a byte of the signature flips', async () => {
    const key = await parseVerifierKey(fixture('vkey.txt').trim());
    const note = flipSignatureByte(fixture('checkpoint.txt'), 20);
    await expect(openNote(note, [key])).rejects.toMatchObject({ kind: 'unauthenticated' });
  });

  it('fails when a byte of the body changes', async () => {
    const key = await parseVerifierKey(fixture('vkey.txt').trim());
    const note = fixture('checkpoint.txt').replace('\n16\n', '\n17\n');
    await expect(openNote(note, [key])).rejects.toMatchObject({ kind: 'unauthenticated' });
  });

  it('says so when no signature is by a given key', async () => {
    await expect(openNote(fixture('checkpoint.txt'), [await parseVerifierKey(SPEC_VKEY)])).rejects.toMatchObject({
      kind: 'unknown-key',
    });
  });

  it('ignores well-formed lines by other keys', async () => {
    const note = fixture('checkpoint.txt') + SPEC_NOTE.slice(SPEC_NOTE.indexOf('\u2014'));
    const opened = await openNote(note, [await parseVerifierKey(fixture('vkey.txt').trim())]);
    expect(opened.signedBy).toEqual(['127.0.0.1:18741+0b97cedc']);
  });

  it.each([
    ['no blank line', 'body\n\u2014 a AAAAAAA=\n'],
    ['no signature', 'body\n\n'],
    ['no final newline', 'body\n\n\u2014 example.com/foo Uw2QOkn8\n'.slice(0, -1)],
    ['a hyphen for the dash', 'body\n\n- example.com/foo Uw2QOkn8srV1\n'],
    ['bad base64', 'body\n\n\u2014 example.com/foo Uw2QOkn8srV1!\n'],
    ['a short signature', 'body\n\n\u2014 example.com/foo Uw2Q\n'],
  ])('refuses a note with %s', async (_what, note) => {
    await expect(openNote(note, [await parseVerifierKey(SPEC_VKEY)])).rejects.toMatchObject({ kind: 'malformed' });
  });

  it('refuses two signatures by the same key', async () => {
    const line = SPEC_NOTE.slice(SPEC_NOTE.indexOf('\u2014'));
    await expect(openNote(SPEC_NOTE + line, [await parseVerifierKey(SPEC_VKEY)])).rejects.toMatchObject({
      kind: 'malformed',
    });
  });
});

describe('checkpoint bodies', () => {
  const root = 'b6en7GbtmpyeL61UXUMoWMx+AFWgLJgvrb7rbnLPaNo=';
  it('keeps extension lines', () => {
    expect(parseCheckpoint(`o\n0\n${root}\next one\n`).extensions).toEqual(['ext one']);
  });
  it.each([
    ['no final newline', `o\n1\n${root}`],
    ['an empty origin', `\n1\n${root}\n`],
    ['a leading zero', `o\n01\n${root}\n`],
    ['a negative size', `o\n-1\n${root}\n`],
    ['a short root', 'o\n1\nAAAA\n'],
    ['an empty extension', `o\n1\n${root}\n\n`],
  ])('refuses %s', (_what, body) => {
    expect(() => parseCheckpoint(body)).toThrow(NoteError);
  });
});
