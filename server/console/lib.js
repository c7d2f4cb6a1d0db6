// The one place the console imports its UI library from: Preact with hooks
// and htm (tagged templates instead of JSX, so no build step), vendored as
// one ES module. Pages import from here, never from vendor/ directly.
export {
  html,
  render,
  h,
  Component,
  createContext,
  useState,
  useReducer,
  useEffect,
  useLayoutEffect,
  useRef,
  useMemo,
  useCallback,
  useContext,
} from './vendor/htm-preact-3.1.1.js';
