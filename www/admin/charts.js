// The dashboard's line charts, drawn on <canvas> with no library (the
// page's CSP loads nothing from elsewhere). Imported by app.js.

// The chart colours; style.css has the same list as .c0 ... .c7 for legends.
export const PALETTE = ['#2563eb', '#db2777', '#16a34a', '#d97706', '#7c3aed', '#0891b2', '#dc2626', '#4b5563'];

const FONT = '11px system-ui, -apple-system, "Segoe UI", Roboto, sans-serif';
const PAD = { l: 48, r: 10, t: 8, b: 22 };

// niceStep(v): the smallest 1, 2, 2.5 or 5 × 10^n not below v (v > 0).
function niceStep(v) {
	const e = Math.pow(10, Math.floor(Math.log10(v)));
	for (const m of [1, 2, 2.5, 5, 10]) if (m * e >= v * (1 - 1e-9)) return Number((m * e).toPrecision(2));
	return 10 * e;
}

// The decimals a tick step needs: 0.25 → 2, 2.5 → 1, 50 → 0.
function stepDecimals(step) {
	const s = String(step);
	return s.includes('e-') ? Number(s.split('e-')[1]) : (s.split('.')[1] || '').length;
}

const isValue = (v) => v !== null && v !== undefined && Number.isFinite(v);

// fit(canvas): a 2D context scaled to CSS pixels, with the plot box; null
// while the canvas is hidden (no layout size).
function fit(canvas) {
	const w = canvas.clientWidth;
	const h = canvas.clientHeight;
	if (!w || !h) return null;
	const dpr = window.devicePixelRatio || 1;
	if (canvas.width !== Math.round(w * dpr) || canvas.height !== Math.round(h * dpr)) {
		canvas.width = Math.round(w * dpr);
		canvas.height = Math.round(h * dpr);
	}
	const ctx = canvas.getContext('2d');
	ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
	ctx.clearRect(0, 0, w, h);
	ctx.font = FONT;
	return { ctx, x: PAD.l, y: PAD.t, w: w - PAD.l - PAD.r, h: h - PAD.t - PAD.b };
}

// Horizontal grid lines with their values (4 steps), minute marks below.
function drawGrid(ctx, box, step, span) {
	const digits = stepDecimals(step);
	ctx.lineWidth = 1;
	ctx.textBaseline = 'middle';
	ctx.textAlign = 'right';
	for (let i = 0; i <= 4; i++) {
		const y = Math.round(box.y + box.h - (box.h * i) / 4) + 0.5;
		ctx.strokeStyle = i === 0 ? '#9ca3af' : '#e5e7eb';
		ctx.beginPath();
		ctx.moveTo(box.x, y);
		ctx.lineTo(box.x + box.w, y);
		ctx.stroke();
		ctx.fillStyle = '#6b7280';
		ctx.fillText((step * i).toFixed(digits), box.x - 6, y);
	}
	ctx.textAlign = 'center';
	ctx.textBaseline = 'top';
	for (let m = Math.floor(span / 60000); m >= 0; m--) {
		const x = box.x + box.w - (box.w * m * 60000) / span;
		const label = m === 0 ? 'now' : `−${m} min`;
		ctx.fillText(label, Math.min(Math.max(x, box.x + 14), box.x + box.w - 12), box.y + box.h + 6);
	}
}

// One series: a line through its points (broken at gaps), a dot on the
// newest so that a value shows from the first poll on.
function drawSeries(ctx, box, s, t0, span, top) {
	ctx.strokeStyle = s.color;
	ctx.beginPath();
	let pen = false;
	let last = null;
	for (const [t, v] of s.points) {
		if (!isValue(v) || t < t0) {
			pen = false;
			continue;
		}
		const x = box.x + ((t - t0) / span) * box.w;
		const y = box.y + box.h - (Math.min(v, top) / top) * box.h;
		if (pen) ctx.lineTo(x, y);
		else ctx.moveTo(x, y);
		pen = true;
		last = [x, y];
	}
	ctx.stroke();
	if (last) {
		ctx.fillStyle = s.color;
		ctx.beginPath();
		ctx.arc(last[0], last[1], 2.5, 0, 2 * Math.PI);
		ctx.fill();
	}
}

// drawChart(canvas, series, span, opts): a line chart of series [{name,
// color, points: [[t ms, v|null]]}] over the last span ms, y from 0 in four
// nice steps to at least opts.floor, opts.empty written when there is no
// point. Sets data-points (values drawn) and data-max on the canvas.
// Returns nothing; draws nothing while the canvas is hidden.
export function drawChart(canvas, series, span, opts) {
	const box = fit(canvas);
	if (!box) return;
	const values = series.flatMap((s) => s.points.map((p) => p[1]).filter(isValue));
	const max = values.length ? Math.max(...values) : 0;
	const step = niceStep(Math.max(max, opts.floor || 1) / 4);
	canvas.dataset.points = String(values.length);
	canvas.dataset.max = String(max);

	const { ctx } = box;
	drawGrid(ctx, box, step, span);
	if (!values.length) {
		ctx.textAlign = 'center';
		ctx.textBaseline = 'middle';
		ctx.fillStyle = '#9ca3af';
		ctx.fillText(opts.empty || 'waiting for data…', box.x + box.w / 2, box.y + box.h / 2);
		return;
	}
	ctx.lineWidth = 2;
	ctx.lineJoin = 'round';
	const t0 = Date.now() - span;
	for (const s of series) drawSeries(ctx, box, s, t0, span, step * 4);
}
