import { test } from 'node:test';
import assert from 'node:assert/strict';
import { applyHeaderModifier, applyUrlRewrite, redirectLocation, rewritePath } from './request-filters';
import type { PathMatch, PathModifier } from './route-model';

const prefix = (value: string): PathMatch => ({ type: 'PathPrefix', value });

test('header modifier: set replaces, add appends, remove deletes', () => {
  const out = applyHeaderModifier({ a: '1', b: '2', c: '3', d: ['x'] }, {
    set: [{ name: 'a', value: 'one' }, { name: 'n', value: 'new' }], add: [{ name: 'b', value: 'two' }, { name: 'd', value: 'y' }, { name: 'e', value: 'e' }], remove: ['c'],
  });
  assert.deepEqual(out, { a: 'one', b: ['2', 'two'], d: ['x', 'y'], e: 'e', n: 'new' });
});

test('path rewrites: ReplaceFullPath and element-wise ReplacePrefixMatch', () => {
  const full: PathModifier = { type: 'ReplaceFullPath', value: '/full' };
  const table: [string, PathModifier, PathMatch, string | undefined][] = [
    ['/anything/at/all', full, prefix('/anything'), '/full'],
    ['/foo/bar', { type: 'ReplacePrefixMatch', value: '/baz' }, prefix('/foo'), '/baz/bar'],
    ['/foo', { type: 'ReplacePrefixMatch', value: '/baz' }, prefix('/foo'), '/baz'],
    ['/foo/', { type: 'ReplacePrefixMatch', value: '/baz' }, prefix('/foo'), '/baz/'],
    ['/foo/bar', { type: 'ReplacePrefixMatch', value: '/baz/' }, prefix('/foo/'), '/baz/bar'],
    ['/foo/bar', { type: 'ReplacePrefixMatch', value: '/' }, prefix('/foo'), '/bar'],
    ['/foo', { type: 'ReplacePrefixMatch', value: '/' }, prefix('/foo'), '/'],
    ['/x', { type: 'ReplacePrefixMatch', value: '/v2' }, prefix('/'), '/v2/x'],
    ['/foo', { type: 'ReplacePrefixMatch', value: '/v2' }, { type: 'Exact', value: '/foo' }, undefined],
  ];
  for (const [path, mod, matched, want] of table) assert.equal(rewritePath(path, mod, matched), want, `${path} ${JSON.stringify(mod)}`);
});

test('URLRewrite changes path and host', () => {
  assert.deepEqual(applyUrlRewrite({ type: 'URLRewrite', hostname: 'new.example', path: { type: 'ReplacePrefixMatch', value: '/v2' } }, '/api/x', prefix('/api')),
    { path: '/v2/x', host: 'new.example' });
  assert.deepEqual(applyUrlRewrite({ type: 'URLRewrite' }, '/api/x', prefix('/api')), { path: '/api/x' });
});

test('redirects: scheme, host, port and path, with the well-known port left out', () => {
  const r = { scheme: 'http' as const, host: 'api.shop', port: 8080, path: '/old/x', query: 'a=1' };
  const table: [Parameters<typeof redirectLocation>[0], string, number][] = [
    [{ type: 'RequestRedirect', statusCode: 302 }, 'http://api.shop:8080/old/x?a=1', 302],
    [{ type: 'RequestRedirect', statusCode: 301, scheme: 'https' }, 'https://api.shop/old/x?a=1', 301],
    [{ type: 'RequestRedirect', statusCode: 302, hostname: 'other', port: 80 }, 'http://other/old/x?a=1', 302],
    [{ type: 'RequestRedirect', statusCode: 302, port: 9090, path: { type: 'ReplacePrefixMatch', value: '/new' } }, 'http://api.shop:9090/new/x?a=1', 302],
    [{ type: 'RequestRedirect', statusCode: 302, scheme: 'https', port: 8443, path: { type: 'ReplaceFullPath', value: '/' } }, 'https://api.shop:8443/?a=1', 302],
  ];
  for (const [f, location, status] of table) assert.deepEqual(redirectLocation(f, r, prefix('/old')), { location, status });
});
