// The SVG charts: scales, escaping, missing values, balanced markup.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { barChartSvg, lineChartSvg, niceScale, wrapLabel } from './svg-chart';

test('niceScale: 1, 2 or 5 times a power of ten, covering the maximum', () => {
  const cases: [number, number, number][] = [[7.3, 8, 2], [1, 1, 0.2], [0.43, 0.5, 0.1], [980, 1000, 200], [0, 1, 0.2], [12, 15, 5]];
  for (const [max, wantMax, wantStep] of cases) {
    const s = niceScale(max);
    assert.ok(Math.abs(s.max - wantMax) < 1e-9 && Math.abs(s.step - wantStep) < 1e-9, `${max}: got ${JSON.stringify(s)}`);
  }
});

/** Every opened element is closed, in order (a well-formedness check without an XML library). */
function balanced(svg: string): boolean {
  const stack: string[] = [];
  for (const m of svg.matchAll(/<(\/?)([a-z]+)[^>]*?(\/?)>/g)) {
    if (m[3]) continue;
    if (m[1]) { if (stack.pop() !== m[2]) return false; } else stack.push(m[2]!);
  }
  return stack.length === 0;
}

test('barChartSvg: a bar per value, n/a for missing ones, text escaped, balanced', () => {
  const svg = barChartSvg({ title: 'p99 <ms> & more', yLabel: 'ms', series: ['a', 'b'], panels: [{ title: '500 req/s', groups: [{ label: 'p50', values: [1, null] }, { label: 'p99', values: [3, 4] }] }] });
  assert.ok(svg.includes('p99 &lt;ms&gt; &amp; more'));
  assert.equal((svg.match(/<rect x="[\d.]+" y="[\d.]+" width="[\d.]+" height="[\d.]+" fill="#/g) ?? []).length, 1 + 3 + 2, 'the background, three bars and two legend boxes');
  assert.ok(svg.includes('>n/a<'));
  assert.ok(balanced(svg));
});

test('lineChartSvg: a polyline per series with two points or more, points at their x', () => {
  const svg = lineChartSvg({ title: 'memory', xLabel: 'pods', yLabel: 'MiB', series: [{ name: 'x', points: [{ x: 2, y: 10 }, { x: 10, y: 50 }, { x: 50, y: null }] }, { name: 'y', points: [{ x: 2, y: 5 }] }] });
  assert.equal((svg.match(/<polyline/g) ?? []).length, 1);
  assert.equal((svg.match(/<circle/g) ?? []).length, 3);
  assert.ok(balanced(svg));
});

test('wrapLabel: long labels break before their parenthesis', () => {
  const cases: [string, string[]][] = [
    ['p50', ['p50']],
    ['per 1,000 requests (keep-alive @ 1000/s)', ['per 1,000 requests', '(keep-alive @ 1000/s)']],
    ['short (x)', ['short (x)']],
    ['(leading parenthesis is kept whole)', ['(leading parenthesis is kept whole)']],
  ];
  for (const [label, want] of cases) assert.deepEqual(wrapLabel(label), want, label);
});
