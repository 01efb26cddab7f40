/**
 * A virtualized table: only the rows in view (and a margin) are in the DOM, between two spacer
 * rows that keep the scroll height, so 100k rows scroll as smoothly as 100. A real <table> (an
 * ARIA grid with row indexes); arrow keys, Page Up/Down, Home/End move the active row and keep it
 * in view, Enter opens it.
 */
import type { ComponentChildren } from 'preact';
import { useEffect, useRef, useState } from 'preact/hooks';
import type { Row } from './events.js';
import { visibleRange } from './virtual.js';

export interface Column {
  title: string;
  /** CSS class setting the width. */
  className: string;
  cell: (r: Row) => ComponentChildren;
  /** Full text for the tooltip when the cell is cut short. */
  full?: (r: Row) => string;
}

/** Must match `.vtable tbody tr` in viewer.css. */
const ROW_HEIGHT = 30;
const HEAD_HEIGHT = 32;

export function VirtualTable(props: {
  label: string;
  rows: readonly Row[];
  columns: readonly Column[];
  onOpen?: (r: Row) => void;
}) {
  const { rows, columns } = props;
  const idPrefix = props.label.toLowerCase().replace(/[^a-z0-9]+/g, '-');
  const scroller = useRef<HTMLDivElement>(null);
  const [scrollTop, setScrollTop] = useState(0);
  const [height, setHeight] = useState(600);
  const [active, setActive] = useState(0);

  useEffect(() => {
    const el = scroller.current;
    if (!el) return;
    const measure = () => setHeight(el.clientHeight - HEAD_HEIGHT);
    measure();
    const observer = new ResizeObserver(measure);
    observer.observe(el);
    return () => observer.disconnect();
  }, []);
  useEffect(() => setActive((a) => Math.min(a, Math.max(0, rows.length - 1))), [rows.length]);

  const { start, end } = visibleRange(scrollTop, height, ROW_HEIGHT, rows.length);
  const move = (to: number) => {
    const next = Math.max(0, Math.min(rows.length - 1, to));
    setActive(next);
    const el = scroller.current;
    if (!el) return;
    const top = next * ROW_HEIGHT;
    if (top < el.scrollTop) el.scrollTop = top;
    else if (top + ROW_HEIGHT > el.scrollTop + height) el.scrollTop = top + ROW_HEIGHT - height;
  };
  const onKey = (e: KeyboardEvent) => {
    const page = Math.max(1, Math.floor(height / ROW_HEIGHT) - 1);
    const to: Record<string, number> = {
      ArrowDown: active + 1,
      ArrowUp: active - 1,
      PageDown: active + page,
      PageUp: active - page,
      Home: 0,
      End: rows.length - 1,
    };
    if (e.key in to) {
      e.preventDefault();
      move(to[e.key]!);
    } else if (e.key === 'Enter' && props.onOpen && rows[active] && !(e.target instanceof HTMLAnchorElement)) {
      e.preventDefault();
      props.onOpen(rows[active]!);
    }
  };

  const visible = [];
  for (let i = start; i < end; i++) {
    const r = rows[i]!;
    visible.push(
      <tr
        key={i}
        id={`${idPrefix}-row-${i}`}
        aria-rowindex={i + 2}
        aria-selected={i === active}
        class={`${i === active ? 'active' : ''}${r.event.result?.status === 'denied' ? ' denied' : ''}`}
      >
        {columns.map((c) => (
          <td class={c.className} title={c.full?.(r)}>
            {c.cell(r)}
          </td>
        ))}
      </tr>,
    );
  }
  return (
    <div
      class="vtable"
      ref={scroller}
      onScroll={(e) => setScrollTop(Math.max(0, (e.currentTarget as HTMLDivElement).scrollTop))}
    >
      <table
        // biome-ignore lint/a11y/noNoninteractiveElementToInteractiveRole: a virtualized table is one grid that takes focus and tracks its active row (aria-activedescendant)
        role="grid"
        aria-label={props.label}
        aria-rowcount={rows.length + 1}
        tabIndex={0}
        aria-activedescendant={rows.length > 0 ? `${idPrefix}-row-${active}` : undefined}
        onKeyDown={onKey}
      >
        <thead>
          <tr aria-rowindex={1}>
            {columns.map((c) => (
              <th scope="col" class={c.className}>
                {c.title}
              </th>
            ))}
          </tr>
        </thead>
        <tbody>
          {start > 0 ? <tr class="spacer" style={{ height: `${start * ROW_HEIGHT}px` }} /> : null}
          {visible}
          {end < rows.length ? <tr class="spacer" style={{ height: `${(rows.length - end) * ROW_HEIGHT}px` }} /> : null}
        </tbody>
      </table>
    </div>
  );
}
