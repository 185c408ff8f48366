const WORDS = ['basalt', 'column', 'lava', 'cools', 'cracks', 'hexagon', 'river', 'delta', 'granite', 'quartz', 'erosion', 'glacier', 'sediment', 'mantle', 'crust', 'fault'];

/** `chars` characters of words and sentences (a paragraph break now and then), different for each seed. */
export function words(chars: number, seed: number): string {
  const parts: string[] = [];
  let length = 0;
  let x = (seed * 2654435761) >>> 0 || 1;
  for (let i = 0; length < chars; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    const word = `${WORDS[x % WORDS.length]}${x % 1000}`;
    const sep = i % 13 === 12 ? (i % 91 === 90 ? '.\n\n' : '. ') : ' ';
    parts.push(word, sep);
    length += word.length + sep.length;
  }
  return parts.join('').slice(0, chars);
}
