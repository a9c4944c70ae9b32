// The neurtmp ingest page: the stream list from /streams, refreshed every few seconds,
// and a player for the selected stream's HLS ladder (hls.js with automatic level
// switching, else the browser's own HLS). ?stream=KEY selects a stream; with none
// selected, the first live stream plays. ?player=dash plays the DASH manifest with dash.js
// (loaded only then) instead. A stream with alternate audio renditions (an encoder's
// audio tracks in several languages) gets an audio selector.
"use strict";

const REFRESH_MS = 3000;

const video = document.getElementById("player");
const rows = document.querySelector("#streams tbody");
const statusLine = document.getElementById("status");
const nowPlaying = document.getElementById("now-playing");
const levelOut = document.getElementById("level");
const audioChoice = document.getElementById("audio-choice");
const audioSelect = document.getElementById("audio-track");

const params = new URLSearchParams(location.search);
const useDash = params.get("player") === "dash";
let selected = params.get("stream");
let streams = [];
let playingUrl = null;
let hls = null;
let dash = null;
/** Fatal hls.js errors (network, media), kept apart from the page's own JS errors. */
window.__hlsErrors = [];
/** dash.js error events (those it gives up on: manifest, downloads, media source). */
window.__dashErrors = [];

// ---- formatting

/** Sets an element's text only when it changes (live regions then announce changes only). */
function setText(element, text) {
  if (element.textContent !== text) element.textContent = text;
}

function duration(seconds) {
  const s = Math.max(0, Math.floor(seconds || 0));
  const hms = [Math.floor(s / 3600), Math.floor(s / 60) % 60, s % 60];
  const text = hms.map((n) => String(n).padStart(2, "0")).join(":");
  return hms[0] ? text : text.slice(3);
}

function kbps(value) {
  return value == null ? "–" : `${Math.round(value)} kb/s`;
}

function rungsText(rungs) {
  return (rungs || []).map((r) => `${r.name} (${kbps(r.bitrate_kbps)})`).join(", ") || "–";
}

// ---- the stream list

function rowFor(key) {
  for (const row of rows.rows) {
    if (row.dataset.key === key) return row;
  }
  const row = rows.insertRow();
  row.dataset.key = key;
  const name = document.createElement("th");
  name.scope = "row";
  row.append(name);
  for (let i = 0; i < 4; i++) row.insertCell();
  const button = document.createElement("button");
  button.type = "button";
  button.textContent = "Watch";
  button.setAttribute("aria-label", `Watch ${key}`);
  button.addEventListener("click", () => select(key));
  row.cells[4].append(button);
  return row;
}

function showStreams(list) {
  const keys = new Set(list.map((s) => s.key));
  for (const row of [...rows.rows]) {
    if (!keys.has(row.dataset.key)) row.remove();
  }
  for (const stream of list) {
    const row = rowFor(stream.key);
    row.cells[0].textContent = !stream.live ? `${stream.key} (ended)`
      : stream.reconnecting ? `${stream.key} (reconnecting)`
      : stream.active === "backup" ? `${stream.key} (backup)` : stream.key;
    row.cells[1].textContent = rungsText(stream.rungs);
    row.cells[2].textContent = kbps(stream.bitrate_kbps);
    row.cells[3].textContent = duration(stream.uptime_s);
    const current = stream.key === selected;
    row.classList.toggle("selected", current);
    const button = row.cells[4].firstChild;
    button.setAttribute("aria-pressed", String(current));
    button.disabled = !stream.live;
  }
  const live = list.filter((s) => s.live).length;
  setText(statusLine, live
    ? `${live} live stream${live === 1 ? "" : "s"}.`
    : "No live streams. Publish one with RTMP to /live/KEY on this server.");
}

function update() {
  if (selected === null) {
    const first = streams.find((s) => s.live);
    if (first) selected = first.key;
  }
  showStreams(streams);
  const stream = streams.find((s) => s.key === selected);
  setText(nowPlaying, selected === null ? "no stream selected"
    : stream && stream.live ? selected : `${selected} (not live)`);
  if (stream && stream.live) {
    if (useDash) playDash(stream.dash);
    else play(stream.hls);
  }
}

async function refresh() {
  try {
    const response = await fetch("/streams", { cache: "no-store" });
    if (!response.ok) throw new Error(`HTTP ${response.status}`);
    streams = (await response.json()).streams || [];
    update();
  } catch (error) {
    setText(statusLine, `Cannot load the stream list (${error.message}); retrying.`);
  } finally {
    setTimeout(refresh, REFRESH_MS);
  }
}

function select(key) {
  if (key === selected) return;
  selected = key;
  const query = new URLSearchParams({ stream: key });
  if (useDash) query.set("player", "dash");
  history.replaceState(null, "", `?${query}`);
  stop();
  update();
}

// ---- the player

function showLevel() {
  const size = video.videoWidth ? `${video.videoWidth}×${video.videoHeight}` : "";
  if (hls && hls.currentLevel >= 0 && hls.levels[hls.currentLevel]) {
    const level = hls.levels[hls.currentLevel];
    const mode = hls.autoLevelEnabled ? "automatic" : "manual";
    setText(levelOut, `${level.height}p, ${kbps(level.bitrate / 1000)}` +
      ` (${hls.currentLevel + 1} of ${hls.levels.length}, ${mode})`);
  } else {
    setText(levelOut, size ? `${size} (${dash ? "dash.js" : "native HLS"})` : "–");
  }
}

// ---- audio renditions

/** The player's audio tracks as [{name, lang}], and the index of the one playing. */
function audioTracks() {
  if (hls) return [hls.audioTracks.map((t) => ({ name: t.name, lang: t.lang })), hls.audioTrack];
  if (dash) {
    const tracks = dash.getTracksFor("audio");
    const current = dash.getCurrentTrackFor("audio");
    return [tracks.map((t) => ({ name: t.labels.length ? t.labels[0].text : t.lang, lang: t.lang })),
            tracks.findIndex((t) => current && t.id === current.id)];
  }
  return [[], -1];
}

/** Lists the audio renditions in the selector, shown only when there is a choice. */
function showAudioTracks() {
  const [tracks, current] = audioTracks();
  audioChoice.hidden = tracks.length < 2;
  const labels = tracks.map((t) => (t.lang && t.name !== t.lang ? `${t.name} (${t.lang})` : t.name || t.lang));
  if ([...audioSelect.options].map((o) => o.textContent).join("\n") !== labels.join("\n")) {
    audioSelect.replaceChildren(...labels.map((label, i) => new Option(label, String(i))));
  }
  if (current >= 0) audioSelect.value = String(current);
}

audioSelect.addEventListener("change", () => {
  const index = Number(audioSelect.value);
  if (hls) hls.audioTrack = index;
  else if (dash) dash.setCurrentTrack(dash.getTracksFor("audio")[index]);
});

function stop() {
  if (hls) hls.destroy();
  if (dash) dash.reset();
  hls = null;
  dash = null;
  playingUrl = null;
  video.removeAttribute("src");
  video.load();
  setText(levelOut, "–");
  showAudioTracks();
}

function start() {
  // play() is refused (and rejects) when autoplay is not allowed; the controls are there.
  video.play().catch(() => {});
}

function play(url) {
  if (url === playingUrl) return;
  stop();
  playingUrl = url;
  if (window.Hls && Hls.isSupported()) {
    // ABR: hls.js picks and switches the level itself (currentLevel -1, the default).
    hls = new Hls();
    let recoveries = 0;
    hls.on(Hls.Events.MANIFEST_PARSED, start);
    hls.on(Hls.Events.LEVEL_SWITCHED, showLevel);
    hls.on(Hls.Events.AUDIO_TRACKS_UPDATED, showAudioTracks);
    hls.on(Hls.Events.AUDIO_TRACK_SWITCHED, showAudioTracks);
    hls.on(Hls.Events.ERROR, (event, data) => {
      if (!data.fatal) return;
      window.__hlsErrors.push(`${data.type}: ${data.details}`);
      if (data.type === Hls.ErrorTypes.MEDIA_ERROR && recoveries++ < 2) {
        hls.recoverMediaError();
      } else {
        stop(); // the next refresh starts it again if the stream is still live
      }
    });
    hls.loadSource(url);
    hls.attachMedia(video);
  } else if (video.canPlayType("application/vnd.apple.mpegurl")) {
    video.src = url;
    start();
  } else {
    setText(levelOut, "this browser cannot play HLS");
  }
}

function playDash(url) {
  if (url === playingUrl) return;
  stop();
  playingUrl = url;
  if (!(window.dashjs && dashjs.supportsMediaSource())) {
    setText(levelOut, "this browser cannot play DASH");
    return;
  }
  // ABR as with hls.js: dash.js picks and switches the representation itself.
  dash = dashjs.MediaPlayer().create();
  dash.on(dashjs.MediaPlayer.events.ERROR, (event) => {
    const error = event.error || {};
    window.__dashErrors.push(`${error.code}: ${error.message}`);
  });
  dash.on(dashjs.MediaPlayer.events.STREAM_INITIALIZED, showAudioTracks);
  dash.on(dashjs.MediaPlayer.events.TRACK_CHANGE_RENDERED, showAudioTracks);
  dash.initialize(video, url, true);
}

/** Loads dash.js, then the stream list (which starts the player). */
function loadDash() {
  const script = document.createElement("script");
  script.src = "/static/dash.all.min.js";
  script.onload = refresh;
  script.onerror = () => { setText(levelOut, "cannot load dash.js"); refresh(); };
  document.body.append(script);
}

video.addEventListener("resize", showLevel);
if (useDash) loadDash();
else refresh();
