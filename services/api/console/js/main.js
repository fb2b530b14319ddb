// The console's shell: login, the user's role, hash routes (#/, #/wells/{id}, #/tasks),
// the live alert stream feeding the alert list, the critical banner and the fleet board.

import * as alerts from "./alerts.js";
import * as api from "./api.js";
import * as fleet from "./fleet.js";
import { AlertStream } from "./stream.js";
import * as tasks from "./tasks.js";
import { $, esc } from "./util.js";
import * as well from "./well.js";

const HISTORY_ON_START = 200;
let me = null;
let stream = null;
let route = 0; // bumped on every navigation, so a slow page does not paint over a newer one

function showMessage(el, text) {
  el.textContent = text || "";
  el.hidden = !text;
}

function pageError(text) {
  showMessage($("#page-message"), text);
}

function isEngineer() {
  return Boolean(me) && (me.role === "engineer" || me.role === "admin");
}

function showLogin(message) {
  if (stream) stream.stop();
  stream = null;
  me = null;
  api.clearToken();
  alerts.reset();
  fleet.reset();
  $("#app-view").hidden = true;
  $("#login-view").hidden = false;
  showMessage($("#login-message"), message);
  $("#login-password").value = "";
  $("#login-email").focus();
}

function streamStatus(state, detail) {
  const el = $("#stream-status");
  el.className = `stream-status is-${state}`;
  el.textContent = detail;
}

function criticalBanner(a) {
  $("#critical-text").innerHTML = `CRITICAL — ${esc(fleet.wellName(a.well_id))}: ${esc(a.message)} <a href="#/wells/${esc(a.well_id)}">open the well</a>`;
  $("#critical-banner").hidden = false;
  document.body.classList.add("has-critical");
}

function onAlert(data) {
  alerts.add(data);
  fleet.alertFor(data);
}

async function navigate() {
  const mine = ++route;
  pageError("");
  const hash = location.hash || "#/";
  const [path, query] = hash.slice(1).split("?");
  const params = new URLSearchParams(query || "");
  const root = $("#page");
  fleet.leave();
  well.leave();
  for (const a of document.querySelectorAll("nav a")) a.classList.remove("active");
  try {
    const m = path.match(/^\/wells\/(\d+)$/);
    if (m) {
      await well.render(root, Number(m[1]), isEngineer(), params);
    } else if (path === "/tasks") {
      $('nav a[data-nav="tasks"]').classList.add("active");
      await tasks.render(root, isEngineer());
    } else {
      $('nav a[data-nav="fleet"]').classList.add("active");
      await fleet.render(root);
    }
  } catch (e) {
    if (mine === route && !(e instanceof api.ApiError && e.status === 401)) {
      root.innerHTML = `<p class="message">Could not load this page: ${esc(e.message)}</p>`;
    }
  }
}

async function enter() {
  me = await api.get("/auth/me");
  api.scheduleExpiry();
  $("#user-badge").textContent = `${me.email} (${me.role})`;
  document.body.dataset.role = me.role;
  $("#login-view").hidden = true;
  $("#app-view").hidden = false;
  alerts.configure({ engineer: isEngineer(), critical: criticalBanner });
  stream = new AlertStream({ onAlert, onStatus: streamStatus, onUnauthorized: showLogin });
  stream.start();
  const [history] = await Promise.all([
    api.get("/alerts", { limit: HISTORY_ON_START }).catch(() => []),
    navigate(),
  ]);
  alerts.load(history);
}

function install() {
  api.setUnauthorizedHandler(showLogin);
  alerts.install(pageError);
  tasks.wireStatusChanges($("#page"), pageError);
  $("#login-form").addEventListener("submit", async (e) => {
    e.preventDefault();
    const button = $("#login-submit");
    button.disabled = true;
    showMessage($("#login-message"), "");
    try {
      await api.login($("#login-email").value.trim(), $("#login-password").value);
      await enter();
    } catch (err) {
      showMessage($("#login-message"), `Login failed: ${err.message}`);
    } finally {
      button.disabled = false;
    }
  });
  $("#logout-button").addEventListener("click", async () => {
    if (stream) stream.stop();
    await api.logout();
    showLogin("You are logged out.");
  });
  $("#critical-dismiss").addEventListener("click", () => {
    $("#critical-banner").hidden = true;
    document.body.classList.remove("has-critical");
  });
  window.addEventListener("hashchange", () => {
    if (me) navigate();
  });
}

install();
if (api.token()) {
  enter().catch((e) => showLogin(e instanceof api.ApiError ? `Log in again: ${e.message}` : ""));
} else {
  showLogin("");
}
