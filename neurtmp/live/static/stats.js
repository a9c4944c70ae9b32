// The stats page: polls the JSON API, plays a stream over HTTP-FLV with mpegts.js
// (over WebSocket-FLV, ws://HOST/APP/NAME.flv, with ?transport=ws).
"use strict";

const overWebSocket = new URLSearchParams(location.search).get("transport") === "ws";

const tokenInput = document.getElementById("token");
tokenInput.value = localStorage.getItem("neurtmp-token") || "";
tokenInput.addEventListener("change", () => localStorage.setItem("neurtmp-token", tokenInput.value));

function headers() {
  return tokenInput.value ? { Authorization: "Bearer " + tokenInput.value } : {};
}

async function api(path, method = "GET") {
  const response = await fetch("/api/v1/" + path, { method, headers: headers() });
  const body = await response.json();
  if (!response.ok) throw new Error(body.error || response.statusText);
  return body;
}

function cell(row, text) {
  const td = document.createElement("td");
  td.textContent = text === null || text === undefined ? "" : String(text);
  row.appendChild(td);
  return td;
}

function button(row, label, action) {
  const b = document.createElement("button");
  b.textContent = label;
  b.addEventListener("click", action);
  cell(row, "").appendChild(b);
}

const kbps = bps => (bps / 1000).toFixed(0) + " kbit/s";

let player = null;

function play(app, name) {
  const video = document.getElementById("video");
  if (player) { player.destroy(); player = null; }
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  const url = overWebSocket ? `${scheme}//${location.host}/${app}/${name}.flv` : `/${app}/${name}.flv`;
  player = mpegts.createPlayer({ type: "flv", isLive: true, url });
  player.attachMediaElement(video);
  player.load();
  video.play().catch(e => window.pageErrors.push(String(e)));
  document.getElementById("playing").textContent = `${app}/${name}`;
  document.getElementById("player").hidden = false;
}
window.play = play;

async function refresh() {
  const error = document.getElementById("error");
  try {
    const [server, streams, clients] = await Promise.all([api("server"), api("streams"), api("clients")]);
    document.getElementById("summary").textContent =
      `version ${server.version} · up ${server.uptime.toFixed(0)} s · ${server.connections} RTMP connections · ` +
      `${server.http_flv_players} HTTP-FLV players · in ${kbps(server.bandwidth_in_bps)} · out ${kbps(server.bandwidth_out_bps)}`;
    const streamRows = document.getElementById("streams");
    streamRows.replaceChildren();
    for (const s of streams.streams) {
      const row = document.createElement("tr");
      row.dataset.stream = `${s.app}/${s.name}`;
      cell(row, `${s.app}/${s.name}` + (s.live ? "" : " (waiting)"));
      cell(row, s.publisher);
      cell(row, [s.video_codec, s.audio_codec].filter(Boolean).join(" + "));
      cell(row, s.width ? `${s.width}x${s.height}` + (s.fps ? ` @ ${s.fps}` : "") : "");
      cell(row, kbps(s.bitrate_in_bps));
      cell(row, `${s.players_by_protocol.rtmp} / ${s.players_by_protocol["http-flv"]}`);
      cell(row, s.uptime.toFixed(0) + " s");
      button(row, "play", () => play(s.app, s.name));
      streamRows.appendChild(row);
    }
    const clientRows = document.getElementById("clients");
    clientRows.replaceChildren();
    for (const c of clients.clients) {
      const row = document.createElement("tr");
      for (const value of [c.id, c.address, c.protocol, c.app, c.roles.join(", "), c.streams.join(", "), c.bytes_out]) {
        cell(row, value);
      }
      button(row, "kick", () => api("clients/" + c.id, "DELETE").then(refresh, e => { error.textContent = e.message; }));
      clientRows.appendChild(row);
    }
    error.textContent = "";
  } catch (e) {
    error.textContent = e.message;
  }
}

refresh();
setInterval(refresh, 2000);
