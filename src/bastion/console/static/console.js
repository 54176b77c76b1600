// The Bastion console's only script: the overview's live numbers (server-sent events).
// Every page works without it. Values are written with textContent, never as HTML.
"use strict";

(function () {
  const overview = document.getElementById("overview");
  if (!overview || typeof EventSource === "undefined") {
    return;
  }
  const state = document.getElementById("live-state");
  const stream = new EventSource(overview.dataset.stream);

  function show(id, value) {
    const element = document.getElementById(id);
    if (element) {
      element.textContent = String(value);
    }
  }

  function showClients(clients) {
    const body = document.querySelector("#clients tbody");
    if (!body) {
      return;
    }
    const rows = clients.map(function (client) {
      const row = document.createElement("tr");
      const name = document.createElement("td");
      const link = document.createElement("a");
      link.href = "things/" + encodeURIComponent(client.clientId);
      link.textContent = client.clientId;
      name.appendChild(link);
      const source = document.createElement("td");
      source.textContent = client.sourceIp;
      row.append(name, source);
      return row;
    });
    if (rows.length === 0) {
      const row = document.createElement("tr");
      row.className = "empty";
      const cell = document.createElement("td");
      cell.colSpan = 2;
      cell.textContent = "No device is connected to this node.";
      row.appendChild(cell);
      rows.push(row);
    }
    body.replaceChildren.apply(body, rows);
  }

  stream.addEventListener("overview", function (event) {
    const sample = JSON.parse(event.data);
    show("connected", sample.connected);
    show("messages-in", sample.messagesIn.toFixed(1));
    show("messages-out", sample.messagesOut.toFixed(1));
    show("violations", sample.activeViolations);
    show("expiring", sample.expiringCertificates);
    Object.keys(sample.findings).forEach(function (severity) {
      show("findings-" + severity.toLowerCase(), sample.findings[severity]);
    });
    showClients(sample.clients);
    state.textContent = "live";
    state.className = "live on";
  });

  stream.addEventListener("ended", function () {
    stream.close();
    state.textContent = "session ended";
    state.className = "live off";
  });

  stream.onerror = function () {
    if (stream.readyState === EventSource.CLOSED) {
      state.textContent = "offline";
      state.className = "live off";
    } else {
      state.textContent = "reconnecting";
      state.className = "live";
    }
  };
})();
