// Chicago's 77 community areas, numbered as the data portal numbers them. The list has
// been fixed since 1980, so it lives here as it does in the service (crimecast.areas).

export const AREA_NAMES = [
  'Rogers Park', 'West Ridge', 'Uptown', 'Lincoln Square', 'North Center', 'Lake View',
  'Lincoln Park', 'Near North Side', 'Edison Park', 'Norwood Park', 'Jefferson Park',
  'Forest Glen', 'North Park', 'Albany Park', 'Portage Park', 'Irving Park', 'Dunning',
  'Montclare', 'Belmont Cragin', 'Hermosa', 'Avondale', 'Logan Square', 'Humboldt Park',
  'West Town', 'Austin', 'West Garfield Park', 'East Garfield Park', 'Near West Side',
  'North Lawndale', 'South Lawndale', 'Lower West Side', 'Loop', 'Near South Side',
  'Armour Square', 'Douglas', 'Oakland', 'Fuller Park', 'Grand Boulevard', 'Kenwood',
  'Washington Park', 'Hyde Park', 'Woodlawn', 'South Shore', 'Chatham', 'Avalon Park',
  'South Chicago', 'Burnside', 'Calumet Heights', 'Roseland', 'Pullman', 'South Deering',
  'East Side', 'West Pullman', 'Riverdale', 'Hegewisch', 'Garfield Ridge', 'Archer Heights',
  'Brighton Park', 'McKinley Park', 'Bridgeport', 'New City', 'West Elsdon', 'Gage Park',
  'Clearing', 'West Lawn', 'Chicago Lawn', 'West Englewood', 'Englewood', 'Greater Grand Crossing',
  'Ashburn', 'Auburn Gresham', 'Beverly', 'Washington Heights', 'Mount Greenwood', 'Morgan Park',
  "O'Hare", 'Edgewater'
];

/** Matching key: case, punctuation and spacing dropped ("OHARE" = "O'Hare"). */
export function areaKey(text) {
  return String(text ?? '').toLowerCase().replace(/[^0-9a-z]+/g, '');
}

const BY_KEY = new Map(AREA_NAMES.map((name, i) => [areaKey(name), i + 1]));
const CITY_KEYS = new Set(['city', 'citywide', 'chicago', 'wholecity', 'allofchicago', 'allchicago']);

export const CITY = 'city';

/** The display name of an area number, or "Citywide" for null. */
export function areaName(area) {
  return area == null ? 'Citywide' : AREA_NAMES[area - 1] ?? `Area ${area}`;
}

/**
 * What the user typed, as an area: a number 1..77, null for the whole city, or undefined
 * when it names nothing. Accepts a name in any case or spacing, a number, or a prefix
 * that only one name starts with.
 */
export function resolveArea(text) {
  const key = areaKey(text);
  if (!key) return undefined;
  if (CITY_KEYS.has(key)) return null;
  if (/^\d+$/.test(key)) {
    const n = Number(key);
    return n >= 1 && n <= 77 ? n : undefined;
  }
  if (BY_KEY.has(key)) return BY_KEY.get(key);
  const starts = AREA_NAMES.filter((name) => areaKey(name).startsWith(key));
  return starts.length === 1 ? BY_KEY.get(areaKey(starts[0])) : undefined;
}

/** Up to `limit` names that contain what the user typed, for a "did you mean" hint. */
export function suggestAreas(text, limit = 3) {
  const key = areaKey(text);
  if (!key) return [];
  const scored = AREA_NAMES.map((name) => {
    const k = areaKey(name);
    const at = k.indexOf(key.slice(0, Math.max(3, Math.min(key.length, 5))));
    return { name, score: at < 0 ? Infinity : at };
  }).filter((s) => s.score !== Infinity);
  return scored.sort((a, b) => a.score - b.score).slice(0, limit).map((s) => s.name);
}
