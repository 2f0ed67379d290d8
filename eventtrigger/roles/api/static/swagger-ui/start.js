// Starts Swagger UI on /openapi.json (a file, not inline script, so a strict CSP holds).
window.ui = SwaggerUIBundle({ url: "/openapi.json", dom_id: "#swagger-ui" });
