// Style sheets imported by the page: esbuild bundles them into app.css; they export nothing.
declare module '*.css';
