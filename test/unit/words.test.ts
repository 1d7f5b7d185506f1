import t from 'tap';
import { amountInWords, MAX_AMOUNT_IN_WORDS } from '../../src/lib/words.js';

const inr = (minor: number): string => amountInWords(minor, 'INR');
const usd = (minor: number): string => amountInWords(minor, 'USD');

t.test('the examples from the brief', async (t) => {
  t.equal(inr(3363000), 'Indian Rupees Thirty-Three Thousand Six Hundred Thirty Only');
  t.equal(inr(12345678950), 'Indian Rupees Twelve Crore Thirty-Four Lakh Fifty-Six Thousand Seven Hundred Eighty-Nine and Fifty Paise Only');
  t.equal(inr(0), 'Indian Rupees Zero Only');
  t.equal(usd(123456), 'US Dollars One Thousand Two Hundred Thirty-Four and Fifty-Six Cents Only');
});

t.test('paise alone', async (t) => {
  t.equal(inr(5), 'Indian Rupees Zero and Five Paise Only');
  t.equal(inr(99), 'Indian Rupees Zero and Ninety-Nine Paise Only');
  t.equal(inr(1), 'Indian Rupees Zero and One Paisa Only');
  t.equal(usd(1), 'US Dollars Zero and One Cent Only');
  t.equal(usd(40), 'US Dollars Zero and Forty Cents Only');
});

t.test('small numbers: teens, tens and hyphens', async (t) => {
  t.equal(inr(100), 'Indian Rupees One Only');
  t.equal(inr(1100), 'Indian Rupees Eleven Only');
  t.equal(inr(1900), 'Indian Rupees Nineteen Only');
  t.equal(inr(2000), 'Indian Rupees Twenty Only');
  t.equal(inr(2100), 'Indian Rupees Twenty-One Only');
  t.equal(inr(10000), 'Indian Rupees One Hundred Only');
  t.equal(inr(10100), 'Indian Rupees One Hundred One Only');
  t.equal(inr(99900), 'Indian Rupees Nine Hundred Ninety-Nine Only');
});

t.test('lakh and crore boundaries', async (t) => {
  t.equal(inr(99_999_00), 'Indian Rupees Ninety-Nine Thousand Nine Hundred Ninety-Nine Only');
  t.equal(inr(1_00_000_00), 'Indian Rupees One Lakh Only');
  t.equal(inr(1_00_001_00), 'Indian Rupees One Lakh One Only');
  t.equal(inr(10_00_000_00), 'Indian Rupees Ten Lakh Only');
  t.equal(inr(99_99_999_00), 'Indian Rupees Ninety-Nine Lakh Ninety-Nine Thousand Nine Hundred Ninety-Nine Only');
  t.equal(inr(1_00_00_000_00), 'Indian Rupees One Crore Only');
  t.equal(inr(1_00_00_000_01), 'Indian Rupees One Crore and One Paisa Only');
  t.equal(inr(1_01_00_000_00), 'Indian Rupees One Crore One Lakh Only');
  t.equal(inr(1_00_01_000_00), 'Indian Rupees One Crore One Thousand Only');
});

t.test('crores repeat beyond 99 crore', async (t) => {
  t.equal(inr(99_00_00_000_00), 'Indian Rupees Ninety-Nine Crore Only');
  t.equal(inr(100_00_00_000_00), 'Indian Rupees One Hundred Crore Only');
  t.equal(inr(12345_00_00_000_00), 'Indian Rupees Twelve Thousand Three Hundred Forty-Five Crore Only');
  t.equal(inr(1_23_450_00_00_000_00), 'Indian Rupees One Lakh Twenty-Three Thousand Four Hundred Fifty Crore Only');
  t.equal(inr(MAX_AMOUNT_IN_WORDS), 'Indian Rupees Ten Lakh Crore Only');
  t.equal(inr(MAX_AMOUNT_IN_WORDS - 1), 'Indian Rupees Nine Lakh Ninety-Nine Thousand Nine Hundred Ninety-Nine Crore Ninety-Nine Lakh Ninety-Nine Thousand Nine Hundred Ninety-Nine and Ninety-Nine Paise Only');
});

t.test('USD counts in thousands, millions, billions', async (t) => {
  t.equal(usd(0), 'US Dollars Zero Only');
  t.equal(usd(100_000_00), 'US Dollars One Hundred Thousand Only');
  t.equal(usd(1_000_000_00), 'US Dollars One Million Only');
  t.equal(usd(1_000_001_00), 'US Dollars One Million One Only');
  t.equal(usd(12_345_678_950), 'US Dollars One Hundred Twenty-Three Million Four Hundred Fifty-Six Thousand Seven Hundred Eighty-Nine and Fifty Cents Only');
  t.equal(usd(2_000_000_000_00), 'US Dollars Two Billion Only');
  t.equal(usd(MAX_AMOUNT_IN_WORDS), 'US Dollars Ten Trillion Only');
});

t.test('negative, fractional and too-large amounts are refused', async (t) => {
  t.throws(() => inr(-1), RangeError);
  t.throws(() => usd(-100), RangeError);
  t.throws(() => inr(1.5), RangeError);
  t.throws(() => inr(Number.NaN), RangeError);
  t.throws(() => inr(Number.POSITIVE_INFINITY), RangeError);
  t.throws(() => inr(MAX_AMOUNT_IN_WORDS + 1), RangeError);
});
